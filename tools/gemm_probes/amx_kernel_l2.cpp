// The AMX bf16x9 kernel of csrc/gemm_amx.cpp (32x32 C block, 3 pieces each side, 9 products
// per k block) on packed A and B of growing size: in L1/L2 (nkb <= 128) vs streamed from L3 (stop 31).
#include <initializer_list>
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <cstdio>
#include <cstdint>
#include <cstring>
#include <cstdlib>
#include <chrono>
constexpr int64_t kTileWords=256, kPieceWords=512, kBlockWords=1536;
struct alignas(64) TileConfig { uint8_t palette=1, start_row=0; uint8_t reserved[14]={}; uint16_t colsb[16]={}; uint8_t rows[16]={}; };
template<int ORDER>
void kernel(const uint32_t* Ap, const uint32_t* Bp, int64_t nkb, float* C, int64_t ldc) {
  const int64_t s = ldc*4;
  _tile_zero(0);_tile_zero(1);_tile_zero(2);_tile_zero(3);
  for (int64_t kb=0; kb<nkb; ++kb) {
    const uint32_t* a = Ap + kb*kBlockWords; const uint32_t* b = Bp + kb*kBlockWords;
    if (ORDER==0) {
    for (int i=0;i<3;++i){ _tile_loadd(4,a+i*kPieceWords,64); _tile_loadd(5,a+i*kPieceWords+kTileWords,64);
      for(int j=0;j<3;++j){ _tile_loadd(6,b+j*kPieceWords,64); _tile_loadd(7,b+j*kPieceWords+kTileWords,64);
        _tile_dpbf16ps(0,4,6);_tile_dpbf16ps(1,4,7);_tile_dpbf16ps(2,5,6);_tile_dpbf16ps(3,5,7);}}
    } else {
      // interleaved: load next operand right after the tdp that frees it
      for (int i=0;i<3;++i){ _tile_loadd(4,a+i*kPieceWords,64);
        for(int j=0;j<3;++j){ _tile_loadd(6,b+j*kPieceWords,64);
          if (j==0) _tile_loadd(5,a+i*kPieceWords+kTileWords,64);
          _tile_dpbf16ps(0,4,6); _tile_loadd(7,b+j*kPieceWords+kTileWords,64);
          _tile_dpbf16ps(1,4,7); _tile_dpbf16ps(2,5,6);_tile_dpbf16ps(3,5,7);}}
    }
  }
  _tile_stored(0,C,s);_tile_stored(1,C+16,s);_tile_stored(2,C+16*ldc,s);_tile_stored(3,C+16*ldc+16,s);
}
int main(int argc,char**argv){
  syscall(SYS_arch_prctl,0x1023,18);
  TileConfig cfg; for(int t=0;t<8;++t){cfg.colsb[t]=64;cfg.rows[t]=16;} _tile_loadconfig(&cfg);
  for (int64_t nkb : {8, 32, 128, 512}) {
    size_t words = nkb*kBlockWords;
    uint32_t* A=(uint32_t*)aligned_alloc(4096, words*4*8); uint32_t* B=(uint32_t*)aligned_alloc(4096, words*4*8);
    for(size_t i=0;i<words*8;++i){A[i]=0x3f803f80;B[i]=0x3f803f80;}
    alignas(64) static float C[32*1024];
    for (int order=0; order<2; ++order) {
    double best=1e9; long reps = 4096/nkb;
    for(int r=0;r<20;++r){ auto t0=std::chrono::steady_clock::now();
      for(long q=0;q<reps;++q) { if(order==0) kernel<0>(A, B + (q%8)*0*words, nkb, C, 32); else kernel<1>(A,B,nkb,C,32);}
      double s=std::chrono::duration<double>(std::chrono::steady_clock::now()-t0).count(); if(s<best)best=s;}
    double f=reps*2.0*32*32*32*nkb;
    printf("nkb %ld (A+B %ld KB) order %d: %.1f GF/s f32-equiv (bf16 %.0f)\n", nkb, words*8/1024, order, f/best/1e9, 9*f/best/1e9);
    }
  }
}
