"""Smallest known reproducer (pure JAX, no MuJoCo/earjax) of the jaxlib 0.10.x CPU deadlock.

Run it in a subprocess with a timeout: it prints "ok" and exits 0 in well under a
second of run time when it does not deadlock; when it deadlocks it never returns
(every XLA intra-op worker asleep in jax::ParallelBatchMap -> BlockingCounter::Wait,
under lapack_spotrf_ffi; 0 % CPU).

  XLA_FLAGS=--xla_cpu_enable_concurrency_optimized_scheduler=false  -> ok
  XLA_FLAGS unset, or ...=true                                       -> hangs (2-core box)

Ingredients (all needed):
  * >= (intra-op threads) independent batched Cholesky custom calls (lapack_spotrf_ffi)
    in one program -- one per chain here, K chains;
  * each batch big enough that jaxlib splits it over the intra-op pool:
    batch > ceil(200_000 / (n**3 // 3))  (n = 14: batch >= 220; 1024 here);
  * each Cholesky fed by a fusion that XLA splits over the intra-op pool (so the
    Cholesky thunk starts as a continuation ON a pool thread);
  * repeated (a fori_loop) so the race is hit in practice.
K defaults to max(4, 2 * CPUs) so that there are more chains than intra-op threads.
argv (optional): K B N ITERS
"""
import os
import sys
import time

import jax
import jax.numpy as jnp

K = int(sys.argv[1]) if len(sys.argv) > 1 else max(4, 2 * len(os.sched_getaffinity(0)))
B, N, ITERS = (int(a) for a in (sys.argv[2:5] or (1024, 14, 100)))

x = jax.random.normal(jax.random.PRNGKey(0), (K, B, N, N))
spd = x @ jnp.swapaxes(x, -1, -2) / N + jnp.eye(N)


def body(i, chains):
  out = []
  for a in chains:
    a = a + 1e-3 * jnp.sin(a)                      # elementwise fusion, split over threads
    l = jnp.linalg.cholesky(a)                     # lapack_spotrf_ffi, batch split over threads
    out.append(0.5 * (l @ jnp.swapaxes(l, -1, -2)) + 0.5 * a)   # stays SPD
  return out


f = jax.jit(lambda c: jax.lax.fori_loop(0, ITERS, body, c))
t0 = time.time()
compiled = f.lower([spd[k] for k in range(K)]).compile()
print(f"compiled in {time.time() - t0:.2f} s", flush=True)
t0 = time.time()
jax.block_until_ready(compiled([spd[k] for k in range(K)]))
print(f"ok: ran in {time.time() - t0:.2f} s", flush=True)
