/* hist_count_floor.c -- where the time of a histogram goes (docs/performance.md, "Kernels").
 *
 * Standalone timings on one core (thread CPU time) of the pieces of fd_hist.c's loops over 1e7
 * standard normal float64: a vector sum (memory bound), the table path one value at a time,
 * the sub-bucket arithmetic with only the counter increment ("cntonly", each group of 8 counted as
 * soon as its sub-buckets are stored; "cntblk", the sub-buckets of 128 values stored before they
 * are counted: the floor of counting one value at a time; their counts are of sub-buckets, hence
 * WRONG), a split table, gathers, the pair count, the compare counts of few edges, and "qt", the
 * bins of 32 values from a 256-bucket table in registers (fd_hist.c's qtrun_avx512) counted a
 * block of 128 at a time, and "qtp", the same with each block counted while the next one's bins are
 * computed (as qtrun_avx512 does).  Inputs (the first argument picks them: 10 or 100
 * quantile bins, 1 = 100 uniform bins):
 *
 *   mkdir -p /tmp/hist_floor && python -c "
 *   import numpy as np; from fastdrift.kernels.hist import make_index
 *   x = np.random.default_rng(0).standard_normal(10**7); x.tofile('/tmp/hist_floor/x.bin')
 *   for q, e in ((10, np.quantile(x, np.linspace(0, 1, 11)[1:-1])),
 *                (100, np.quantile(x, np.linspace(0, 1, 101)[1:-1])), (1, np.linspace(-4, 4, 101))):
 *       ix = make_index(e); ix.padded.tofile(f'/tmp/hist_floor/e{q}.bin')
 *       (ix.table if q > 1 else np.zeros(808, np.int32)).tofile(f'/tmp/hist_floor/t{q}.bin')
 *       np.bincount(np.searchsorted(e, x, side='right'), minlength=e.size + 1).tofile(f'/tmp/hist_floor/c{q}.bin')"
 *   gcc -O3 -march=native -ffp-contract=off bench/hist_count_floor.c -o /tmp/hist_floor/hf -lm
 *   /tmp/hist_floor/hf 100; /tmp/hist_floor/hf 10; /tmp/hist_floor/hf 1
 *
 * (The inverse widths below are make_index's for these inputs.)  Needs AVX-512.
 */
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <float.h>
#include <math.h>
#include <time.h>
#include <immintrin.h>
#define N 10000000
static double *x; static double *e; static int32_t *tab; static int ne, nt; static double lo, inv;
static int64_t want[128];
static double now(void){struct timespec t; clock_gettime(CLOCK_THREAD_CPUTIME_ID,&t); return t.tv_sec+1e-9*t.tv_nsec;}
static void *rd(const char*f,size_t *n){FILE*fp=fopen(f,"rb");fseek(fp,0,SEEK_END);*n=ftell(fp);fseek(fp,0,SEEK_SET);void*p=aligned_alloc(64,(*n+63)/64*64);fread(p,1,*n,fp);fclose(fp);return p;}
__attribute__((noinline)) double vsum(void){ __m512d a=_mm512_setzero_pd(),b=a,c=a,d=a; for(long i=0;i<N;i+=32){a=_mm512_add_pd(a,_mm512_loadu_pd(x+i));b=_mm512_add_pd(b,_mm512_loadu_pd(x+i+8));c=_mm512_add_pd(c,_mm512_loadu_pd(x+i+16));d=_mm512_add_pd(d,_mm512_loadu_pd(x+i+24));} return _mm512_reduce_add_pd(_mm512_add_pd(_mm512_add_pd(a,b),_mm512_add_pd(c,d)));}
static int64_t C[4][128];
__attribute__((noinline)) void scal(int64_t *cnt){ memset(C,0,sizeof C); double top=nt-1;
 for(long i=0;i<N;i++){ double v=x[i]; double t=(v-lo)*inv; t=t>0?t:0; t=t<top?t:top; int b=tab[(int)t]; double xc=v>DBL_MAX?DBL_MAX:v; b+=xc>=e[b]; C[i&3][b]++;}
 for(int b=0;b<=ne;b++) cnt[b]=C[0][b]+C[1][b]+C[2][b]+C[3][b];}
__attribute__((noinline)) void vj(int64_t *cnt){ memset(C,0,sizeof C); double top=nt-1;
 for(long i=0;i<N;i+=8){ __m512d v=_mm512_loadu_pd(x+i); __m512d t=_mm512_mul_pd(_mm512_sub_pd(v,_mm512_set1_pd(lo)),_mm512_set1_pd(inv)); t=_mm512_max_pd(t,_mm512_setzero_pd()); t=_mm512_min_pd(t,_mm512_set1_pd(top));
   int32_t j[8]; double xc[8]; _mm256_storeu_si256((__m256i*)j,_mm512_cvttpd_epi32(t)); _mm512_storeu_pd(xc,_mm512_min_pd(v,_mm512_set1_pd(DBL_MAX)));
   for(int k=0;k<8;k++){int b=tab[j[k]]; b+=xc[k]>=e[b]; C[k&3][b]++;}}
 for(int b=0;b<=ne;b++) cnt[b]=C[0][b]+C[1][b]+C[2][b]+C[3][b];}
__attribute__((noinline)) void gat(int64_t *cnt){ memset(C,0,sizeof C); double top=nt-1;
 for(long i=0;i<N;i+=8){ __m512d v=_mm512_loadu_pd(x+i); __m512d t=_mm512_mul_pd(_mm512_sub_pd(v,_mm512_set1_pd(lo)),_mm512_set1_pd(inv)); t=_mm512_max_pd(t,_mm512_setzero_pd()); t=_mm512_min_pd(t,_mm512_set1_pd(top));
   __m256i jj=_mm512_cvttpd_epi32(t); __m256i b=_mm256_i32gather_epi32(tab,jj,4); __m512d ev=_mm512_i32gather_pd(b,e,8);
   __mmask8 m=_mm512_cmp_pd_mask(_mm512_min_pd(v,_mm512_set1_pd(DBL_MAX)),ev,_CMP_GE_OQ); b=_mm256_mask_add_epi32(b,m,b,_mm256_set1_epi32(1));
   int32_t j[8]; _mm256_storeu_si256((__m256i*)j,b);
   for(int k=0;k<8;k++){C[k&3][j[k]]++;}}
 for(int b=0;b<=ne;b++) cnt[b]=C[0][b]+C[1][b]+C[2][b]+C[3][b];}
/* split table: per sub-bucket, the edge inside (or +inf) and the start bin */
static double *spl;
__attribute__((noinline)) void splt(int64_t *cnt){ memset(C,0,sizeof C); double top=nt-1;
 for(long i=0;i<N;i+=8){ __m512d v=_mm512_loadu_pd(x+i); __m512d t=_mm512_mul_pd(_mm512_sub_pd(v,_mm512_set1_pd(lo)),_mm512_set1_pd(inv)); t=_mm512_max_pd(t,_mm512_setzero_pd()); t=_mm512_min_pd(t,_mm512_set1_pd(top));
   int32_t j[8]; double xc[8]; _mm256_storeu_si256((__m256i*)j,_mm512_cvttpd_epi32(t)); _mm512_storeu_pd(xc,_mm512_min_pd(v,_mm512_set1_pd(DBL_MAX)));
   for(int k=0;k<8;k++){int b=tab[j[k]]+(xc[k]>=spl[j[k]]); C[k&3][b]++;}}
 for(int b=0;b<=ne;b++) cnt[b]=C[0][b]+C[1][b]+C[2][b]+C[3][b];}
__attribute__((noinline)) void gspl(int64_t *cnt){ memset(C,0,sizeof C); double top=nt-1;
 for(long i=0;i<N;i+=8){ __m512d v=_mm512_loadu_pd(x+i); __m512d t=_mm512_mul_pd(_mm512_sub_pd(v,_mm512_set1_pd(lo)),_mm512_set1_pd(inv)); t=_mm512_max_pd(t,_mm512_setzero_pd()); t=_mm512_min_pd(t,_mm512_set1_pd(top));
   __m256i jj=_mm512_cvttpd_epi32(t); __m256i b=_mm256_i32gather_epi32(tab,jj,4); __m512d ev=_mm512_i32gather_pd(jj,spl,8);
   __mmask8 m=_mm512_cmp_pd_mask(v,ev,_CMP_GE_OQ); b=_mm256_mask_add_epi32(b,m,b,_mm256_set1_epi32(1));
   int32_t j[8]; _mm256_storeu_si256((__m256i*)j,b);
   for(int k=0;k<8;k++){C[k&3][j[k]]++;}}
 for(int b=0;b<=ne;b++) cnt[b]=C[0][b]+C[1][b]+C[2][b]+C[3][b];}
/* few edges: count x >= e_k per edge in vector accumulators */
__attribute__((noinline)) void cnt512(int64_t *cnt){ __m512i acc[16]; for(int k=0;k<ne;k++) acc[k]=_mm512_setzero_si512();
 for(long i=0;i<N;i+=8){ __m512d v=_mm512_loadu_pd(x+i);
   for(int k=0;k<9;k++) acc[k]=_mm512_mask_sub_epi64(acc[k],_mm512_cmp_pd_mask(v,_mm512_set1_pd(e[k]),_CMP_GE_OQ),acc[k],_mm512_set1_epi64(-1));}
 int64_t ge[17]; for(int k=0;k<ne;k++) ge[k]=_mm512_reduce_add_epi64(acc[k]); cnt[0]=N-ge[0]; for(int k=1;k<ne;k++) cnt[k]=ge[k-1]-ge[k]; cnt[ne]=ge[ne-1];}
__attribute__((noinline)) void cnt256(int64_t *cnt){ __m256i acc[16]; for(int k=0;k<ne;k++) acc[k]=_mm256_setzero_si256();
 for(long i=0;i<N;i+=4){ __m256d v=_mm256_loadu_pd(x+i);
   for(int k=0;k<9;k++) acc[k]=_mm256_sub_epi64(acc[k],_mm256_castpd_si256(_mm256_cmp_pd(v,_mm256_set1_pd(e[k]),_CMP_GE_OQ)));}
 int64_t ge[17]; for(int k=0;k<ne;k++){int64_t t[4]; _mm256_storeu_si256((__m256i*)t,acc[k]); ge[k]=t[0]+t[1]+t[2]+t[3];} cnt[0]=N-ge[0]; for(int k=1;k<ne;k++) cnt[k]=ge[k-1]-ge[k]; cnt[ne]=ge[ne-1];}

static int64_t CC[4][512];
__attribute__((noinline)) void cntonly(int64_t *cnt){ memset(CC,0,sizeof CC); double top=nt-1;
 for(long i=0;i<N;i+=8){ __m512d v=_mm512_loadu_pd(x+i); __m512d t=_mm512_mul_pd(_mm512_sub_pd(v,_mm512_set1_pd(lo)),_mm512_set1_pd(inv)); t=_mm512_max_pd(t,_mm512_setzero_pd()); t=_mm512_min_pd(t,_mm512_set1_pd(top));
   int32_t j[8]; _mm256_storeu_si256((__m256i*)j,_mm512_cvttpd_epi32(t));
   for(int k=0;k<8;k++){CC[k&3][j[k]]++;}}
 for(int b=0;b<=ne;b++) cnt[b]=CC[0][b]+CC[1][b]+CC[2][b]+CC[3][b];}
__attribute__((noinline)) void split2(int64_t *cnt){ memset(C,0,sizeof C); double top=nt-1;
 for(long i=0;i<N;i+=8){ __m512d v=_mm512_loadu_pd(x+i); __m512d t=_mm512_mul_pd(_mm512_sub_pd(v,_mm512_set1_pd(lo)),_mm512_set1_pd(inv)); t=_mm512_max_pd(t,_mm512_setzero_pd()); t=_mm512_min_pd(t,_mm512_set1_pd(top));
   int32_t j[8]; _mm256_storeu_si256((__m256i*)j,_mm512_cvttpd_epi32(t));
   for(int k=0;k<8;k++){int b=tab[j[k]]+(x[i+k]>=spl[j[k]]); C[k&3][b]++;}}
 for(int b=0;b<=ne;b++) cnt[b]=C[0][b]+C[1][b]+C[2][b]+C[3][b];}
typedef struct {double s; int64_t b;} ent; static ent *E;
__attribute__((noinline)) void structv(int64_t *cnt){ memset(C,0,sizeof C); double top=nt-1;
 for(long i=0;i<N;i+=8){ __m512d v=_mm512_loadu_pd(x+i); __m512d t=_mm512_mul_pd(_mm512_sub_pd(v,_mm512_set1_pd(lo)),_mm512_set1_pd(inv)); t=_mm512_max_pd(t,_mm512_setzero_pd()); t=_mm512_min_pd(t,_mm512_set1_pd(top));
   int32_t j[8]; _mm256_storeu_si256((__m256i*)j,_mm512_cvttpd_epi32(t));
   for(int k=0;k<8;k++){const ent *p=E+j[k]; int64_t b=p->b+(x[i+k]>=p->s); C[k&3][b]++;}}
 for(int b=0;b<=ne;b++) cnt[b]=C[0][b]+C[1][b]+C[2][b]+C[3][b];}
__attribute__((noinline)) void struct64(int64_t *cnt){ memset(C,0,sizeof C); double top=nt-1;
 for(long i=0;i<N;i+=8){ __m512d v=_mm512_loadu_pd(x+i); __m512d t=_mm512_mul_pd(_mm512_sub_pd(v,_mm512_set1_pd(lo)),_mm512_set1_pd(inv)); t=_mm512_max_pd(t,_mm512_setzero_pd()); t=_mm512_min_pd(t,_mm512_set1_pd(top));
   int64_t j[8]; _mm512_storeu_si512(j,_mm512_slli_epi64(_mm512_cvttpd_epi64(t),4));
   for(int k=0;k<8;k++){const ent *p=(const ent*)((const char*)E+j[k]); int64_t b=p->b+(x[i+k]>=p->s); C[k&3][b]++;}}
 for(int b=0;b<=ne;b++) cnt[b]=C[0][b]+C[1][b]+C[2][b]+C[3][b];}

/* cntonly's work with the sub-buckets of a block stored before its increments: the store of
 * 8 lanes and the loads of them just after it are what costs cntonly (0.8 against 0.4 ns). */
#define BLK 128
__attribute__((noinline)) void cntblk(int64_t *cnt){ memset(CC,0,sizeof CC); double top=nt-1; int32_t j[BLK];
 for(long i0=0;i0<N;i0+=BLK){ for(int i=0;i<BLK;i+=8){ __m512d v=_mm512_loadu_pd(x+i0+i); __m512d t=_mm512_mul_pd(_mm512_sub_pd(v,_mm512_set1_pd(lo)),_mm512_set1_pd(inv)); t=_mm512_max_pd(t,_mm512_setzero_pd()); t=_mm512_min_pd(t,_mm512_set1_pd(top));
   _mm256_storeu_si256((__m256i*)(j+i),_mm512_cvttpd_epi32(t));}
  for(int k=0;k<BLK;k+=4){CC[0][j[k]]++;CC[1][j[k+1]]++;CC[2][j[k+2]]++;CC[3][j[k+3]]++;}}
 for(int b=0;b<=ne;b++) cnt[b]=CC[0][b]+CC[1][b]+CC[2][b]+CC[3][b];}
/* qt: w = (int)clamp((x - e0) * s + 128, 0, 32767.5); bucket w >> 7 (256), fraction w & 127; per
 * bucket (edges below << 8) | (fraction of its edge, or 255); a fraction tie takes the edge. */
static double qlo, qs; static uint16_t QT[256];
static int qt_w(double v){ v=(v-qlo)*qs+128.0; v=v>0?v:0; v=v<32767.5?v:32767.5; return (int)v;}
static int qt_build(void){ qlo=e[0]; qs=128.0*253/(e[ne-1]-e[0]); int wk[128];
 for(int k=0;k<ne;k++){ wk[k]=qt_w(e[k]); if((wk[k]>>7)<1||(wk[k]>>7)>254||(k&&(wk[k]>>7)<=(wk[k-1]>>7))) return 0;}
 int k=0; for(int j=0;j<256;j++){ while(k<ne&&(wk[k]>>7)<j) k++; QT[j]=(uint16_t)((k<<8)|(k<ne&&(wk[k]>>7)==j?(wk[k]&127):255));} return 1;}
static inline __m256i qt_w8(const double *p){ __m512d v=_mm512_add_pd(_mm512_mul_pd(_mm512_sub_pd(_mm512_loadu_pd(p),_mm512_set1_pd(qlo)),_mm512_set1_pd(qs)),_mm512_set1_pd(128.0));
 v=_mm512_max_pd(v,_mm512_setzero_pd()); v=_mm512_min_pd(v,_mm512_set1_pd(32767.5)); return _mm512_cvttpd_epi32(v);}
/* The bins of the 32 values at x + i0 + i into bb + i, ties settled by their edge. */
static inline __attribute__((always_inline)) void qt32(const __m512i *tv, long i0, int i, uint16_t *bb){
   __m512i w01=_mm512_inserti64x4(_mm512_castsi256_si512(qt_w8(x+i0+i)),qt_w8(x+i0+i+8),1), w23=_mm512_inserti64x4(_mm512_castsi256_si512(qt_w8(x+i0+i+16)),qt_w8(x+i0+i+24),1);
   __m512i w=_mm512_inserti64x4(_mm512_castsi256_si512(_mm512_cvtepi32_epi16(w01)),_mm512_cvtepi32_epi16(w23),1);
   __m512i j=_mm512_srli_epi16(w,7), f=_mm512_and_si512(w,_mm512_set1_epi16(127));
   __m512i a=_mm512_permutex2var_epi16(tv[0],j,tv[1]), b=_mm512_permutex2var_epi16(tv[2],j,tv[3]), c=_mm512_permutex2var_epi16(tv[4],j,tv[5]), d=_mm512_permutex2var_epi16(tv[6],j,tv[7]);
   __mmask32 m6=_mm512_test_epi16_mask(j,_mm512_set1_epi16(64)), m7=_mm512_test_epi16_mask(j,_mm512_set1_epi16(128));
   __m512i t=_mm512_mask_blend_epi16(m7,_mm512_mask_blend_epi16(m6,a,b),_mm512_mask_blend_epi16(m6,c,d));
   __m512i fe=_mm512_and_si512(t,_mm512_set1_epi16(255)), bin=_mm512_srli_epi16(t,8);
   __mmask32 tie=_mm512_cmpeq_epi16_mask(f,fe); bin=_mm512_mask_add_epi16(bin,_mm512_cmpgt_epi16_mask(f,fe),bin,_mm512_set1_epi16(1));
   _mm512_storeu_si512(bb+i,bin);
   while(tie){int k=__builtin_ctz(tie); tie&=tie-1; bb[i+k]+=x[i0+i+k]>=e[bb[i+k]];}}
__attribute__((noinline)) void qt(int64_t *cnt){ memset(C,0,sizeof C); if(!qt_build()) return; __m512i tv[8]; for(int r=0;r<8;r++) tv[r]=_mm512_loadu_si512(QT+32*r); uint16_t bb[BLK];
 for(long i0=0;i0<N;i0+=BLK){ for(int i=0;i<BLK;i+=32){
   qt32(tv,i0,i,bb);}
  for(int k=0;k<BLK;k+=4){C[0][bb[k]]++;C[1][bb[k+1]]++;C[2][bb[k+2]]++;C[3][bb[k+3]]++;}}
 for(int b=0;b<=ne;b++) cnt[b]=C[0][b]+C[1][b]+C[2][b]+C[3][b];}

/* qtp: qt with each block counted while the next block's bins are computed (two buffers). */
__attribute__((noinline)) void qtp(int64_t *cnt){ memset(C,0,sizeof C); if(!qt_build()) return; __m512i tv[8]; for(int r=0;r<8;r++) tv[r]=_mm512_loadu_si512(QT+32*r); uint16_t bbs[2][BLK]; int cur=0;
 for(long i0=0;i0<N;i0+=BLK){ uint16_t *bb=bbs[cur]; const uint16_t *pb=bbs[cur^1]; for(int i=0;i<BLK;i+=32){
   qt32(tv,i0,i,bb);
   if(i0) for(int k=i;k<i+32;k+=4){C[0][pb[k]]++;C[1][pb[k+1]]++;C[2][pb[k+2]]++;C[3][pb[k+3]]++;}}
  cur^=1;}
 for(int k=0;k<BLK;k+=4){C[0][bbs[cur^1][k]]++;C[1][bbs[cur^1][k+1]]++;C[2][bbs[cur^1][k+2]]++;C[3][bbs[cur^1][k+3]]++;}
 for(int b=0;b<=ne;b++) cnt[b]=C[0][b]+C[1][b]+C[2][b]+C[3][b];}

static int32_t P[128*128];
static int64_t near(double xc,int64_t b){ while(b>0&&xc<e[b-1])--b; while(xc>=e[b])++b; return b;}
static inline __m256i arith8(const double *p){ __m512d v=_mm512_loadu_pd(p); __m512d u=_mm512_mul_pd(_mm512_sub_pd(v,_mm512_set1_pd(lo)),_mm512_set1_pd(inv));
  u=_mm512_max_pd(u,_mm512_set1_pd(-0.5)); u=_mm512_min_pd(u,_mm512_set1_pd(ne-0.5)); u=_mm512_add_pd(u,_mm512_set1_pd(1.0));
  __m256i b=_mm512_cvttpd_epi32(u); __m512d fr=_mm512_sub_pd(u,_mm512_cvtepi32_pd(b));
  __mmask8 ok=_mm512_cmp_pd_mask(fr,_mm512_set1_pd(1.0/4096),_CMP_GE_OQ)&_mm512_cmp_pd_mask(fr,_mm512_set1_pd(1-1.0/4096),_CMP_LE_OQ);
  if(__builtin_expect(ok!=0xFF,0)){ int32_t j[8]; _mm256_storeu_si256((__m256i*)j,b); for(int k=0;k<8;k++) if(!((ok>>k)&1)){double xx=p[k]; j[k]=near(xx>DBL_MAX?DBL_MAX:xx,j[k]);} b=_mm256_loadu_si256((__m256i*)j);}
  return b;}
__attribute__((noinline)) void arith1(int64_t *cnt){ memset(C,0,sizeof C);
 for(long i=0;i<N;i+=8){ int32_t j[8]; _mm256_storeu_si256((__m256i*)j,arith8(x+i));
   for(int k=0;k<8;k++){C[k&3][j[k]]++;}}
 for(int b=0;b<=ne;b++) cnt[b]=C[0][b]+C[1][b]+C[2][b]+C[3][b];}
__attribute__((noinline)) void arith2(int64_t *cnt){ int nb=ne+1; memset(P,0,4*nb*nb);
 for(long i=0;i<N;i+=16){ __m256i a=arith8(x+i), b=arith8(x+i+8); int32_t j[8]; _mm256_storeu_si256((__m256i*)j,_mm256_add_epi32(_mm256_mullo_epi32(a,_mm256_set1_epi32(nb)),b));
   for(int k=0;k<8;k++){P[j[k]]++;}}
 for(int a=0;a<nb;a++){cnt[a]=0;} for(int a=0;a<nb;a++) for(int b=0;b<nb;b++){cnt[a]+=P[a*nb+b];cnt[b]+=P[a*nb+b];}}
__attribute__((noinline)) void split2p(int64_t *cnt){ int nb=ne+1; memset(P,0,4*nb*nb); double top=nt-1;
 for(long i=0;i<N;i+=8){ __m512d v=_mm512_loadu_pd(x+i); __m512d t=_mm512_mul_pd(_mm512_sub_pd(v,_mm512_set1_pd(lo)),_mm512_set1_pd(inv)); t=_mm512_max_pd(t,_mm512_setzero_pd()); t=_mm512_min_pd(t,_mm512_set1_pd(top));
   int32_t j[8]; _mm256_storeu_si256((__m256i*)j,_mm512_cvttpd_epi32(t));
   for(int k=0;k<8;k+=2){int b=tab[j[k]]+(x[i+k]>=spl[j[k]]); int b2=tab[j[k+1]]+(x[i+k+1]>=spl[j[k+1]]); P[b*nb+b2]++;}}
 for(int a=0;a<nb;a++){cnt[a]=0;} for(int a=0;a<nb;a++) for(int b=0;b<nb;b++){cnt[a]+=P[a*nb+b];cnt[b]+=P[a*nb+b];}}

static uint16_t P16[128*128];
__attribute__((noinline)) void arith16(int64_t *cnt){ int nb=ne+1; memset(P16,0,2*nb*nb); for(int a=0;a<nb;a++)cnt[a]=0;
 for(long blk=0;blk<N;blk+=65536){ long end=blk+65536<N?blk+65536:N;
 for(long i=blk;i<end;i+=16){ __m256i a=arith8(x+i), b=arith8(x+i+8); int32_t j[8]; _mm256_storeu_si256((__m256i*)j,_mm256_add_epi32(_mm256_mullo_epi32(a,_mm256_set1_epi32(nb)),b));
   for(int k=0;k<8;k++){P16[j[k]]++;}}
 for(int a=0;a<nb;a++) for(int b=0;b<nb;b++){cnt[a]+=P16[a*nb+b];cnt[b]+=P16[a*nb+b];} memset(P16,0,2*nb*nb);}}
__attribute__((noinline)) void split2v(int64_t *cnt){ int nb=ne+1; memset(P,0,4*nb*nb); double top=nt-1;
 for(long i=0;i<N;i+=16){ int32_t bb[16];
   for(int h=0;h<16;h+=8){ __m512d v=_mm512_loadu_pd(x+i+h); __m512d t=_mm512_mul_pd(_mm512_sub_pd(v,_mm512_set1_pd(lo)),_mm512_set1_pd(inv)); t=_mm512_max_pd(t,_mm512_setzero_pd()); t=_mm512_min_pd(t,_mm512_set1_pd(top));
   int32_t j[8]; _mm256_storeu_si256((__m256i*)j,_mm512_cvttpd_epi32(t));
   for(int k=0;k<8;k++){bb[h+k]=tab[j[k]]+(x[i+h+k]>=spl[j[k]]);}}
   int32_t jj[8]; _mm256_storeu_si256((__m256i*)jj,_mm256_add_epi32(_mm256_mullo_epi32(_mm256_loadu_si256((__m256i*)bb),_mm256_set1_epi32(nb)),_mm256_loadu_si256((__m256i*)(bb+8))));
   for(int k=0;k<8;k++) P[jj[k]]++;}
 for(int a=0;a<nb;a++){cnt[a]=0;} for(int a=0;a<nb;a++) for(int b=0;b<nb;b++){cnt[a]+=P[a*nb+b];cnt[b]+=P[a*nb+b];}}
int main(int argc,char**argv){ size_t n; int q=atoi(argv[1]); char f[64]; x=rd("/tmp/hist_floor/x.bin",&n);
 sprintf(f,"/tmp/hist_floor/e%d.bin",q); e=rd(f,&n); ne=n/8-8; sprintf(f,"/tmp/hist_floor/t%d.bin",q); tab=rd(f,&n); nt=n/4;
 sprintf(f,"/tmp/hist_floor/c%d.bin",q); int64_t*w=rd(f,&n); memcpy(want,w,n);
 lo=e[0]; inv=q==1?12.5:(q==10?24.99000747880624:110.01602007707682);
 spl=malloc(8*nt); for(int j=0;j<nt;j++){ int b=tab[j]; double s=(j+1<nt? (b<tab[j+1]? e[b]:INFINITY): (b<ne?e[b]:INFINITY)); spl[j]=s;}
 E=malloc(16*nt); for(int j=0;j<nt;j++){E[j].s=spl[j];E[j].b=tab[j];}
 struct {const char*n; void(*f)(int64_t*);} V[]={{"scalar",scal},{"vj",vj},{"gather",gat},{"split",splt},{"gsplit",gspl},{"cntonly",cntonly},{"cntblk",cntblk},{"qt",qt},{"qtp",qtp},{"split2",split2},{"struct",structv},{"struct64",struct64},{"split2p",split2p},{"arith1",arith1},{"arith2",arith2},{"arith16",arith16},{"split2v",split2v},{"cnt512",cnt512},{"cnt256",cnt256}};
 for(int r=0;r<3;r++){ double t0=now(); volatile double s=vsum(); double ts=now()-t0; (void)s;
  printf("sum %.2f ns/v |",ts/N*1e9);
  for(unsigned v=0;v<sizeof V/sizeof V[0];v++){ if(q!=10 && v>=17) continue; if((q==1)!=(v==13||v==14||v==15)) continue; int64_t c[128]={0}; t0=now(); V[v].f(c); double tv=now()-t0; int ok=!memcmp(c,want,8*(ne+1));
   printf(" %s %.2f(%.2fx)%s",V[v].n,tv/N*1e9,ts/tv,ok?"":"WRONG");}
  printf("\n");}
}
