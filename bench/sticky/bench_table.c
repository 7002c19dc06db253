/*
 * genesys_tlssticky unit-level benchmark: memory per binding, lookup cost
 * as bindings grow, token sign/verify cost.  Built against the module's
 * pure files (the same code the module runs), malloc instead of shm.
 *
 *   make -C bench/sticky run
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "genesys_tlssticky/gts_table.h"
#include "genesys_tlssticky/gts_token.h"

static size_t allocated, allocs;

static void *b_alloc(size_t n)
{
	size_t *p = malloc(n + sizeof(size_t));
	if(!p)
		return NULL;
	*p = n;
	allocated += n;
	allocs++;
	return p + 1;
}

static void b_free(void *v)
{
	size_t *p = v;
	if(!p)
		return;
	p--;
	allocated -= *p;
	allocs--;
	free(p);
}

static void b_lock(void *c, unsigned int i)
{
	(void)c;
	(void)i;
}

static const gts_table_ops_t OPS = {b_alloc, b_free, b_lock, b_lock, NULL};
static const unsigned char KEY[] = "bench-secret-0123456789abcdef";

static double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static unsigned int pow2_at_least(unsigned int n)
{
	unsigned int p = 16;
	while(p < n)
		p <<= 1;
	return p;
}

static void run(int n, unsigned int hash_size)
{
	gts_table_t t;
	gts_flow_t *f = malloc(n * sizeof(*f));
	gts_view_t v;
	gts_conn_t c;
	char aor[64], uri[96];
	size_t base;
	double t0, t1;
	int i, k, rounds = 1000000;
	volatile int sink = 0;

	allocated = allocs = 0;
	gts_table_init(&t, hash_size, hash_size < 1024 ? hash_size : 1024, 0, &OPS);
	base = allocated;
	memset(&c, 0, sizeof(c));
	c.proto = 3;
	c.src.af = c.local.af = 4;
	c.local.port = 5061;
	for(i = 0; i < n; i++) {
		/* realistic lengths: DN@domain, phone Contact with transport */
		snprintf(aor, sizeof(aor), "%d@sip.example.com", 100000 + i);
		snprintf(uri, sizeof(uri), "sip:%d@10.%d.%d.%d:5061;transport=tls",
				100000 + i, (i >> 16) & 255, (i >> 8) & 255, i & 255);
		c.conid = (uint32_t)i + 1;
		c.src.port = (uint16_t)(1024 + i % 60000);
		gts_table_prepare(&t, aor, strlen(aor), uri, strlen(uri), &c, 0, 0, 0,
				64, (uint32_t)i * 2654435761u, &f[i]);
	}
	/* random-order lookups */
	t0 = now_ns();
	for(k = 0; k < rounds; k++) {
		i = (int)(((unsigned)k * 2654435761u) % (unsigned)n);
		sink += gts_table_lookup(&t, &f[i], &v);
	}
	t1 = now_ns();
	printf("| %7d | %8u | %6.0f | %6.0f | %7.1f |\n", n, hash_size,
			(double)(allocated - base) / n,
			(double)(allocated - base + allocs * 16) / n, (t1 - t0) / rounds);
	gts_table_destroy(&t);
	free(f);
	(void)sink;
}

int main(void)
{
	gts_flow_t f, g;
	char tok[GTS_TOKEN_MAX];
	double t0, t1;
	int i, rounds = 200000;
	volatile int sink = 0;
	int sizes[] = {10000, 100000, 1000000};

	printf("sizeof(gts_binding_t) = %zu bytes (+ AOR and Contact strings)\n\n",
			sizeof(gts_binding_t));
	printf("| bindings | buckets | bytes/binding | +16 B allocator header |"
		   " lookup ns |\n|---|---|---|---|---|\n");
	for(i = 0; i < 3; i++) {
		run(sizes[i], 4096);
		run(sizes[i], pow2_at_least((unsigned)sizes[i]));
	}

	memset(&f, 0, sizeof(f));
	f.src.af = f.local.af = 4;
	f.bid = 1;
	t0 = now_ns();
	for(i = 0; i < rounds; i++) {
		f.gen = (uint32_t)i;
		sink += gts_token_encode(&f, KEY, sizeof(KEY) - 1, tok, sizeof(tok));
	}
	t1 = now_ns();
	printf("\ntoken sign (HMAC-SHA256 + base64url): %.0f ns\n",
			(t1 - t0) / rounds);
	t0 = now_ns();
	for(i = 0; i < rounds; i++)
		sink += gts_token_decode(tok, strlen(tok), KEY, sizeof(KEY) - 1, &g);
	t1 = now_ns();
	printf("token verify (decode + HMAC + constant-time compare): %.0f ns\n",
			(t1 - t0) / rounds);
	(void)sink;
	return 0;
}
