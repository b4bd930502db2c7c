/*
 * conc/scope.h - scoped threads: all joined before the scope returns.
 * (Declarations fixed by shared/DESIGN.md; full documentation: issue 6.)
 */
#ifndef CONC_SCOPE_H
#define CONC_SCOPE_H

#ifdef __cplusplus
extern "C" {
#endif

typedef struct conc_scope conc_scope;
typedef struct conc_thread conc_thread;

int conc_scope_run(void (*body)(conc_scope *s, void *ctx), void *ctx);
int conc_scope_spawn(conc_scope *s, void *(*fn)(conc_scope *s, void *arg),
		     void *arg, conc_thread **handle);
int conc_thread_join(conc_thread *t, void **result);

#ifdef __cplusplus
}
#endif

#endif
