import ArgumentParser
import Cluster
import Stress
import Training

// OpenBLAS reads OPENBLAS_CORETYPE when it loads: pick it (and one thread) before anything else.
BLASEnvironment.configureOrReexec()
ProcessTuning.tuneMalloc()
Chorus.main()
