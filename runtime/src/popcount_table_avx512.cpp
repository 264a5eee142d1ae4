// The AVX2 table kernels (popcount_table_avx2.cpp) compiled for AVX-512 machines: the same loop on
// zmm vectors (64 output channels a shuffle) with 32 registers.
#define HALIBIT_TABLE_ZMM 1
#include "popcount_table_avx2.cpp"
