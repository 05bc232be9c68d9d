import sys
MR, NV = int(sys.argv[1]), int(sys.argv[2])
NR = NV*16
base = 2*NV + 2
def acc(v,i): return f"%%zmm{base + v*MR + i}"
L=[]
def step(buf, b_next_off, a_off):
    for i in range(MR):
        bc = f"%%zmm{2*NV}" if i % 2 == 0 else f"%%zmm{2*NV+1}"
        for v in range(NV):
            L.append(f"vfmadd231ps %%zmm{buf+v}, {bc}, {acc(v,i)}")
        L.append(f"vbroadcastss {a_off + 4*(i+2)}(%[a]), {bc}")
        if i == 2: L.append(f"prefetcht0 {a_off + 512}(%[a])")
    for v in range(NV):
        L.append(f"vmovups {b_next_off + 64*v}(%[b]), %%zmm{buf+v}")
step(0, 2*NR*4, 0)
step(NV, 3*NR*4, MR*4)
body = "\\n\\t".join(L)
nacc = MR*NV
src = f'''
#include <immintrin.h>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <algorithm>
static double tnow() {{ timespec ts; clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts); return ts.tv_sec + 1e-9 * ts.tv_nsec; }}
__attribute__((noinline)) void kern(long kc, const float* a, const float* b, float* c, long ldc) {{
  long n = kc / 2;
  alignas(64) float tile[{MR*NR}];
  float* t = tile;
  asm volatile(
'''
for v in range(NV):
    src += f'    "vmovups {64*v}(%[b]), %%zmm{v}\\n\\t vmovups {NR*4 + 64*v}(%[b]), %%zmm{NV+v}\\n\\t"\n'
src += f'    "vbroadcastss (%[a]), %%zmm{2*NV}\\n\\t vbroadcastss 4(%[a]), %%zmm{2*NV+1}\\n\\t"\n'
src += "".join(f'    "vpxorq %%zmm{base+j}, %%zmm{base+j}, %%zmm{base+j}\\n\\t"\n' for j in range(nacc))
src += '    "1:\\n\\t"\n'
# replace acc regs with operand refs
body2 = body
for v in range(NV):
    for i in range(MR):
        body2 = body2.replace(f"%%zmm{base+v*MR+i}, ", f"@@{v*MR+i}, ").replace(f"%%zmm{base+v*MR+i}\\n", f"@@{v*MR+i}\\n")
import re
body2 = re.sub(r"%%zmm(\d+)$", lambda m: "%%zmm"+m.group(1), body2)
# accumulator as last operand of fma: pattern ", %%zmmX" at end of instruction
def fix(instr):
    m = re.match(r"(vfmadd231ps %%zmm\d+, %%zmm\d+, )%%zmm(\d+)", instr)
    if m:
        j = int(m.group(2)) - base
        return instr
    return instr
body2 = "\\n\\t".join(fix(x) for x in L)
src += f'    "{body2}\\n\\t"\n'
src += f'    "addq ${MR*8}, %[a]\\n\\t addq ${NR*8}, %[b]\\n\\t decq %[n]\\n\\t jnz 1b\\n\\t"\n'
src += "".join(f'    "vmovaps %%zmm{base+v*MR+i}, {4*(i*NR+16*v)}(%[t])\\n\\t"\n' for i in range(MR) for v in range(NV))
src += '    : [a] "+r"(a), [b] "+r"(b), [n] "+r"(n)\n    : [t] "r"(t)\n'
src += '    : "memory", ' + ", ".join(f'"xmm{r}"' for r in range(32)) + ');\n'
for i in range(MR):
    for v in range(NV):
        src += f'  _mm512_storeu_ps(c + {i}*ldc + {16*v}, _mm512_add_ps(_mm512_loadu_ps(c + {i}*ldc + {16*v}), _mm512_load_ps(tile + {i*NR+16*v})));\n'
src += f'''}}
int main(int argc, char** argv) {{
  int kc = argc > 1 ? atoi(argv[1]) : 256;
  float* A = (float*)aligned_alloc(64, 4 * {MR} * (kc + 160));
  float* B = (float*)aligned_alloc(64, 4 * {NR} * (kc + 4));
  float* C = (float*)aligned_alloc(64, 4 * {MR} * {NR});
  for (int i = 0; i < {MR} * (kc + 160); ++i) A[i] = 1e-3f * (i % 7);
  for (int i = 0; i < {NR} * (kc + 4); ++i) B[i] = 1e-3f * (i % 5);
  for (int i = 0; i < {MR} * {NR}; ++i) C[i] = 0;
  long reps = 400000000L / ({MR} * {NR} * kc);
  double best = 1e9;
  for (int r = 0; r < 7; ++r) {{
    double t0 = tnow();
    for (long it = 0; it < reps; ++it) kern(kc, A, B, C, {NR});
    best = std::min(best, tnow() - t0);
  }}
  double ref = 0; for (int k = 0; k < kc; ++k) ref += double(A[k * {MR} + 3]) * B[k * {NR} + 17];
  printf("asm {MR}x{NR} kc %d: %.1f GFLOP/s  (%.6g vs %.6g)\\n", kc, 2.0 * {MR} * {NR} * kc * reps / best * 1e-9, C[3*{NR}+17] / (7.0 * reps), ref);
}}
'''
open(f"/tmp/gemmi/asm{MR}x{NR}.cpp", "w").write(src)
