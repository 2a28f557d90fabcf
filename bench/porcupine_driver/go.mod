module statekv/bench/porcupine_driver

go 1.18

// bench/compare_porcupine.sh adds: replace github.com/anishathalye/porcupine => $PORCUPINE_DIR
require github.com/anishathalye/porcupine v0.0.0
