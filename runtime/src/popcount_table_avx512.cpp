// The AVX2 table kernels (popcount_table_avx2.cpp) compiled for AVX-512 machines: the same ymm
// code, EVEX-encoded, with 32 registers and so tiles of more pixels.
#define HALIBIT_TABLE_REGISTERS 32
#include "popcount_table_avx2.cpp"
