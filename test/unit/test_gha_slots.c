/* cmocka tests: genesys_ha runtime state slots (gha_slots.c): a pair that
 * stays the same across a reload keeps its slot (a write through the old
 * snapshot is seen through the new one), changed members start from the
 * probe states, removed pairs release their slot with the last snapshot */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <cmocka.h>

#include "genesys_ha/gha_slots.h"
#include "kg_test.h"

static int live;

static const gha_alloc_t A = {t_alloc, t_free, &live};

static int t_resolve(const char *host, gha_addr_t *out, void *ctx)
{
	(void)ctx;
	memset(out, 0, sizeof(*out));
	if(inet_pton(AF_INET, host, out->ip) == 1) {
		out->af = AF_INET;
		return 0;
	}
	return -1;
}

/* pairs "name=pri,bak;..." and feature servers "fs=uri;..." */
static gha_pool_t *mkpool(const char *pairs, const char *fss, unsigned gen)
{
	gha_draft_t d;
	gha_build_opts_t o;
	gha_pool_t *p = NULL;
	char buf[1024], err[512], *save = NULL, *e, *c, *tok;

	memset(&d, 0, sizeof(d));
	d.file = strdup("pool.xml");
	snprintf(buf, sizeof(buf), "%s", pairs);
	for(tok = strtok_r(buf, ";", &save); tok;
			tok = strtok_r(NULL, ";", &save)) {
		gha_draft_pair_t *x = gha_draft_add_pair(&d);
		e = strchr(tok, '=');
		c = strchr(tok, ',');
		*e = *c = '\0';
		x->name = strdup(tok);
		x->uri[0] = strdup(e + 1);
		x->uri[1] = strdup(c + 1);
	}
	snprintf(buf, sizeof(buf), "%s", fss ? fss : "");
	for(tok = strtok_r(buf, ";", &save); tok;
			tok = strtok_r(NULL, ";", &save)) {
		gha_draft_fs_t *x = gha_draft_add_fs(&d);
		e = strchr(tok, '=');
		*e = '\0';
		x->name = strdup(tok);
		x->uri = strdup(e + 1);
	}
	memset(&o, 0, sizeof(o));
	o.resolve = t_resolve;
	o.now = 1000;
	assert_int_equal(
			gha_pool_build(&d, &o, &A, &p, err, sizeof(err)), GHA_LOAD_OK);
	gha_draft_free(&d);
	p->generation = gen;
	return p;
}

static const int ms_up[16] = {GHA_MS_ACTIVE, GHA_MS_ACTIVE, GHA_MS_ACTIVE,
		GHA_MS_ACTIVE, GHA_MS_ACTIVE, GHA_MS_ACTIVE, GHA_MS_ACTIVE,
		GHA_MS_ACTIVE};
static const int fss_up[4] = {
		GHA_MS_ACTIVE, GHA_MS_ACTIVE, GHA_MS_ACTIVE, GHA_MS_ACTIVE};

/* a slot table, empty, with no allocation live */
static gha_slots_t *new_table(void)
{
	gha_slots_t *t = malloc(sizeof(*t));

	assert_non_null(t);
	live = 0;
	gha_slots_init(t);
	return t;
}

/* t destroyed: every allocation of the test is given back */
static void end_table(gha_slots_t *t)
{
	gha_slots_destroy(t, &A);
	assert_int_equal(live, 0);
	free(t);
}

/* room for n more slots, then p attached (old: the snapshot it replaces) */
static void reserve_attach(gha_slots_t *t, int n, gha_pool_t *p,
		const gha_pool_t *old, const int *ms, const int *fss, long now)
{
	assert_int_equal(gha_slots_reserve(t, n, &A), 0);
	assert_int_equal(gha_slots_attach(t, p, old, ms, fss, now), 0);
}

/* The reload cases below each spell out their pool files, probe states and
 * the slots they expect after each reload: that is the scenario. */
static void test_table_get_put_reuse(void **state)
{
	gha_slots_t *t = new_table();
	gha_slot_t *a, *b, *c;
	int created, i;
	(void)state;
	/* nothing reserved: full */
	assert_null(gha_slots_get(t, GHA_SLOT_PAIR, "A", 1, &created));
	assert_int_equal(gha_slots_reserve(t, 2, &A), 0);
	assert_int_equal(t->nslots, GHA_SLOT_CHUNK);
	a = gha_slots_get(t, GHA_SLOT_PAIR, "A", 1, &created);
	assert_non_null(a);
	assert_int_equal(created, 1);
	a->n_new = 7;
	b = gha_slots_get(t, GHA_SLOT_PAIR, "A", 1, &created);
	assert_ptr_equal(a, b);
	assert_int_equal(created, 0);
	assert_int_equal(a->refs, 2);
	/* same key, other kind: another slot */
	c = gha_slots_get(t, GHA_SLOT_FS, "A", 1, &created);
	assert_ptr_not_equal(c, a);
	assert_int_equal(created, 1);
	assert_int_equal(t->used, 2);
	gha_slots_put(t, a);
	assert_int_equal(a->kind, GHA_SLOT_PAIR);
	gha_slots_put(t, a);
	assert_int_equal(a->kind, GHA_SLOT_FREE);
	assert_int_equal(t->used, 1);
	/* a free slot is taken again, zeroed */
	b = gha_slots_get(t, GHA_SLOT_PAIR, "B", 1, &created);
	assert_ptr_equal(b, a);
	assert_int_equal(b->n_new, 0);
	assert_int_equal(created, 1);
	/* growth by chunks: slots never move */
	assert_int_equal(gha_slots_reserve(t, 3 * GHA_SLOT_CHUNK, &A), 0);
	assert_int_equal(t->nslots, 4 * GHA_SLOT_CHUNK);
	assert_ptr_equal(gha_slots_at(t, b->idx), b);
	for(i = 0; i < 3 * GHA_SLOT_CHUNK; i++) {
		char k[16];
		snprintf(k, sizeof(k), "k%d", i);
		assert_non_null(
				gha_slots_get(t, GHA_SLOT_PAIR, k, (int)strlen(k), &created));
		assert_int_equal(created, 1);
	}
	assert_int_equal(t->used, 2 + 3 * GHA_SLOT_CHUNK);
	/* every key still found (hash chains) */
	for(i = 0; i < 3 * GHA_SLOT_CHUNK; i++) {
		char k[16];
		snprintf(k, sizeof(k), "k%d", i);
		c = gha_slots_get(t, GHA_SLOT_PAIR, k, (int)strlen(k), &created);
		assert_int_equal(created, 0);
		gha_slots_put(t, c);
		gha_slots_put(t, c);
		assert_int_equal(c->kind, GHA_SLOT_FREE);
	}
	assert_int_equal(t->used, 2);
	assert_null(gha_slots_at(t, t->nslots));
	end_table(t);
}

static void test_reload_keeps_the_same_pair_slot(void **state)
{
	gha_slots_t *t = new_table();
	gha_pool_t *p1, *p2, *p3;
	gha_slot_t *sa;
	gha_pair_events_t ev;
	(void)state;
	p1 = mkpool("A=sip:10.0.0.1,sip:10.0.0.2;B=sip:10.0.1.1,sip:10.0.1.2",
			"F=sip:10.0.2.1", 1);
	reserve_attach(t, 3, p1, NULL, ms_up, fss_up, 1000);
	sa = p1->pairs[0].slot;
	assert_int_equal(sa->st.pstate, GHA_PS_UP);
	assert_int_equal(sa->st.active, GHA_PRIMARY);
	assert_int_equal(p1->fs[0].slot->fs_state, GHA_MS_ACTIVE);
	/* reload with the same pairs, B dropped; the feature server's state
	 * (down) is kept, not taken again from the probe states */
	p1->fs[0].slot->fs_state = GHA_MS_DOWN;
	p2 = mkpool("A=sip:10.0.0.1,sip:10.0.0.2", "F=sip:10.0.2.1", 2);
	reserve_attach(t, 2, p2, p1, ms_up, fss_up, 2000);
	assert_ptr_equal(p2->pairs[0].slot, sa);
	assert_ptr_equal(p2->fs[0].slot, p1->fs[0].slot);
	assert_int_equal(p2->fs[0].slot->fs_state, GHA_MS_DOWN);
	assert_int_equal(p2->fs[0].slot->gen, 2);
	/* a switchover written through the old snapshot after the swap is
	 * what the new snapshot reads */
	assert_int_equal(gha_ps_switchover(&p1->pairs[0].slot->st, 2001, &ev), 0);
	assert_int_equal(p2->pairs[0].slot->st.active, GHA_BACKUP);
	p1->pairs[0].slot->n_new = 5;
	assert_int_equal(p2->pairs[0].slot->n_new, 5);
	/* the old snapshot goes: B's slot is free, A's stays */
	assert_int_equal(t->used, 3);
	gha_slots_detach(t, p1);
	assert_int_equal(t->used, 2);
	assert_int_equal(sa->refs, 1);
	assert_int_equal(sa->st.active, GHA_BACKUP);
	/* a reload that changes A's backup: a new slot, from the probe states,
	 * the primary keeps its state; the active member (backup) left, so the
	 * new slot starts on the primary */
	p3 = mkpool("A=sip:10.0.0.1,sip:10.0.0.3", "", 3);
	{
		int ms[2] = {GHA_MS_ACTIVE, GHA_MS_DOWN};
		reserve_attach(t, 1, p3, p2, ms, NULL, 3000);
	}
	assert_ptr_not_equal(p3->pairs[0].slot, sa);
	assert_int_equal(p3->pairs[0].slot->st.active, GHA_PRIMARY);
	assert_int_equal(p3->pairs[0].slot->st.mstate[1], GHA_MS_DOWN);
	assert_int_equal(p3->pairs[0].slot->n_new, 0);
	gha_slots_detach(t, p2);
	assert_int_equal(t->used, 1);
	gha_slots_detach(t, p3);
	assert_int_equal(t->used, 0);
	gha_pool_free(p1, &A);
	gha_pool_free(p2, &A);
	gha_pool_free(p3, &A);
	end_table(t);
}

static void test_changed_members_keep_active_member(void **state)
{
	gha_slots_t *t = new_table();
	gha_pool_t *p1, *p2;
	gha_pair_events_t ev;
	int ms[2] = {GHA_MS_UNKNOWN, GHA_MS_ACTIVE};
	(void)state;
	p1 = mkpool("A=sip:10.0.0.1,sip:10.0.0.2", "", 1);
	reserve_attach(t, 1, p1, NULL, ms_up, NULL, 1000);
	assert_int_equal(gha_ps_switchover(&p1->pairs[0].slot->st, 1001, &ev), 0);
	/* the backup 10.0.0.2 becomes the primary of the new file: still
	 * active, with its state from the old slot */
	p2 = mkpool("A=sip:10.0.0.2,sip:10.0.0.9", "", 2);
	reserve_attach(t, 1, p2, p1, ms, NULL, 2000);
	assert_ptr_not_equal(p2->pairs[0].slot, p1->pairs[0].slot);
	assert_int_equal(p2->pairs[0].slot->st.active, GHA_PRIMARY);
	assert_int_equal(p2->pairs[0].slot->st.mstate[0], GHA_MS_ACTIVE);
	assert_int_equal(p2->pairs[0].slot->st.pstate, GHA_PS_UP);
	/* a stale slot (held by a snapshot older than the published one) is
	 * not taken as is: back to the first members, from probe states */
	{
		gha_pool_t *p3 = mkpool("A=sip:10.0.0.1,sip:10.0.0.2", "", 3);
		int ms3[2] = {GHA_MS_DOWN, GHA_MS_ACTIVE};
		reserve_attach(t, 1, p3, p2, ms3, NULL, 3000);
		assert_ptr_equal(p3->pairs[0].slot, p1->pairs[0].slot);
		/* 10.0.0.2 was active in p2 (as primary): it stays active */
		assert_int_equal(p3->pairs[0].slot->st.active, GHA_BACKUP);
		assert_int_equal(p3->pairs[0].slot->st.mstate[0], GHA_MS_DOWN);
		assert_int_equal(p3->pairs[0].slot->st.n_switchovers, 0);
		gha_slots_detach(t, p3);
		gha_pool_free(p3, &A);
	}
	gha_slots_detach(t, p1);
	gha_slots_detach(t, p2);
	assert_int_equal(t->used, 0);
	gha_pool_free(p1, &A);
	gha_pool_free(p2, &A);
	end_table(t);
}

static void test_attach_full_table_attaches_nothing(void **state)
{
	gha_slots_t *t = new_table();
	gha_pool_t *p;
	gha_slot_t *s;
	int created, i;
	char k[16];
	(void)state;
	assert_int_equal(gha_slots_reserve(t, 1, &A), 0);
	for(i = 0; i < GHA_SLOT_CHUNK - 1; i++) {
		snprintf(k, sizeof(k), "x%d", i);
		gha_slots_get(t, GHA_SLOT_FS, k, (int)strlen(k), &created);
	}
	p = mkpool(
			"A=sip:10.0.0.1,sip:10.0.0.2;B=sip:10.0.1.1,sip:10.0.1.2", "", 1);
	assert_int_equal(gha_slots_attach(t, p, NULL, ms_up, NULL, 1000), -1);
	assert_null(p->pairs[0].slot);
	assert_null(p->pairs[1].slot);
	assert_int_equal(t->used, GHA_SLOT_CHUNK - 1);
	s = gha_slots_at(t, GHA_SLOT_CHUNK - 1);
	assert_int_equal(s->kind, GHA_SLOT_FREE);
	gha_pool_free(p, &A);
	end_table(t);
}

static void test_feature_servers_and_failed_attach(void **state)
{
	gha_slots_t *t = new_table();
	gha_pool_t *p1, *p2;
	int fss[2] = {GHA_MS_INACTIVE, GHA_MS_ACTIVE}, i;
	(void)state;
	/* the same destination twice: one slot, the first probe state */
	p1 = mkpool(
			"A=sip:10.0.0.1,sip:10.0.0.2", "F=sip:10.0.2.1;G=sip:10.0.2.1", 1);
	reserve_attach(t, 3, p1, NULL, ms_up, fss, 1000);
	assert_ptr_equal(p1->fs[0].slot, p1->fs[1].slot);
	assert_int_equal(p1->fs[0].slot->fs_state, GHA_MS_INACTIVE);
	assert_int_equal(p1->fs[0].slot->refs, 2);
	assert_int_equal(t->used, 2);
	/* an attach that fails (table full) leaves p1's slots as they were */
	for(i = 0; t->used < t->nslots - 1; i++) {
		char k[16];
		int created;
		snprintf(k, sizeof(k), "y%d", i);
		gha_slots_get(t, GHA_SLOT_PAIR, k, (int)strlen(k), &created);
	}
	p1->pairs[0].slot->st.active = GHA_BACKUP;
	p2 = mkpool("A=sip:10.0.0.1,sip:10.0.0.2;B=sip:10.0.1.1,sip:10.0.1.2;"
				"C=sip:10.0.3.1,sip:10.0.3.2",
			"F=sip:10.0.2.1", 2);
	assert_int_equal(gha_slots_attach(t, p2, p1, ms_up, fss_up, 2000), -1);
	assert_int_equal(p1->pairs[0].slot->refs, 1);
	assert_int_equal(p1->pairs[0].slot->gen, 1);
	assert_int_equal(p1->pairs[0].slot->st.active, GHA_BACKUP);
	assert_int_equal(p1->fs[0].slot->refs, 2);
	assert_int_equal(p1->fs[0].slot->fs_state, GHA_MS_INACTIVE);
	/* room again: the same reload attaches, A's state kept */
	reserve_attach(t, 4, p2, p1, ms_up, fss_up, 2000);
	assert_ptr_equal(p2->pairs[0].slot, p1->pairs[0].slot);
	assert_int_equal(p2->pairs[0].slot->st.active, GHA_BACKUP);
	assert_int_equal(p2->fs[0].slot->fs_state, GHA_MS_INACTIVE);
	gha_slots_detach(t, p1);
	gha_slots_detach(t, p2);
	gha_pool_free(p1, &A);
	gha_pool_free(p2, &A);
	end_table(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
			cmocka_unit_test(test_table_get_put_reuse),
			cmocka_unit_test(test_reload_keeps_the_same_pair_slot),
			cmocka_unit_test(test_changed_members_keep_active_member),
			cmocka_unit_test(test_attach_full_table_attaches_nothing),
			cmocka_unit_test(test_feature_servers_and_failed_attach),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
