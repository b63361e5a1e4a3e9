"""Physics shared by the lab analysis (fabplan.lab) and the emulators (sim/): below both, importing
neither. ratemodel: steady-state laser rate equations (the S-curve); comb: WGM mode comb and FSR
prediction (through fabplan.wgm); lasing: threshold fluence predicted from cavity loss, the paper's
gain model and pump absorption."""
