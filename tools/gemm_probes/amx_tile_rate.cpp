// TDPBF16PS throughput on this core: four independent 16x16 f32 accumulators, operands in tile
// registers (compute only) and with four tile loads per four products (stop 31).
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <cstdio>
#include <cstdint>
#include <cstring>
#include <chrono>
struct TileCfg { uint8_t palette, start; uint8_t rsv[14]; uint16_t colsb[16]; uint8_t rows[16]; };
int main(){
  long r = syscall(SYS_arch_prctl, 0x1023, 18);
  printf("arch_prctl -> %ld\n", r);
  if (r) return 1;
  TileCfg cfg; memset(&cfg,0,sizeof cfg); cfg.palette=1;
  for(int t=0;t<8;++t){cfg.colsb[t]=64; cfg.rows[t]=16;}
  _tile_loadconfig(&cfg);
  alignas(64) static uint16_t a[16*32*4], b[16*32*4]; alignas(64) static float c[16*16*4];
  for(int i=0;i<16*32*4;++i){a[i]=0x3f80; b[i]=0x3f80;}
  memset(c,0,sizeof c);
  _tile_loadd(0,c,64); _tile_loadd(1,c,64); _tile_loadd(2,c,64); _tile_loadd(3,c,64);
  _tile_loadd(4,a,64); _tile_loadd(5,a+512,64); _tile_loadd(6,b,64); _tile_loadd(7,b+512,64);
  long iters=2000000;
  for(int rep=0;rep<3;++rep){
  auto t0=std::chrono::steady_clock::now();
  for(long i=0;i<iters;++i){
    _tile_dpbf16ps(0,4,6); _tile_dpbf16ps(1,4,7); _tile_dpbf16ps(2,5,6); _tile_dpbf16ps(3,5,7);
  }
  auto t1=std::chrono::steady_clock::now();
  double s=std::chrono::duration<double>(t1-t0).count();
  double flops=iters*4.0*16*16*32*2;
  printf("compute-only: %.1f GFLOP/s (bf16)\n", flops/s/1e9);
  // with loads: realistic 2x2 with reloads of A and B each step
  t0=std::chrono::steady_clock::now();
  for(long i=0;i<iters/2;++i){
    int o=(i&3)*16*32;
    _tile_loadd(4,a+o,64); _tile_loadd(6,b+o,64); _tile_loadd(5,a+((o+512)&2047),64); _tile_loadd(7,b+((o+512)&2047),64);
    _tile_dpbf16ps(0,4,6); _tile_dpbf16ps(1,4,7); _tile_dpbf16ps(2,5,6); _tile_dpbf16ps(3,5,7);
  }
  t1=std::chrono::steady_clock::now();
  s=std::chrono::duration<double>(t1-t0).count();
  printf("with loads: %.1f GFLOP/s (bf16)\n", iters/2*4.0*16*16*32*2/s/1e9);
  }
  _tile_stored(0,c,64); _tile_release();
  printf("%f\n", c[0]);
}
