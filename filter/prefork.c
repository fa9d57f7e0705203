/* prefork.c -- the standalone daemon: one master, N worker processes on a shared socket
 *
 * The master only supervises: it never accepts. Each worker gets the listening socket as fd 0
 * (what a web server that spawns FastCGI programs does) and runs fcgi_loop.c unchanged.
 *
 * The master blocks SIGCHLD, SIGTERM, SIGINT and waits for them with sigtimedwait(), so no
 * handler runs asynchronously. A slot whose worker died is restarted at restart_at: at once
 * when the worker had lived PREFORK_YOUNG_MS or more, else after a delay that doubles from
 * PREFORK_DELAY_MIN_MS to PREFORK_DELAY_MAX_MS, so a crash loop costs a few forks a second at
 * most.
 *
 * SIGHUP: the master loads the file again and opens a limiter on it (reload.c) to prove it
 * works; if not, it logs why and nothing changes. If so, it keeps the new configuration for
 * the workers it forks from now on and sends SIGHUP to every worker, each of which reloads
 * itself between two requests (fcgi_loop.c). A worker starts with SIGHUP blocked, so a HUP
 * sent before it is ready waits for its loop instead of killing it. Stopping: SIGTERM to every worker (each finishes its request), PREFORK_STOP_MS to
 * exit, then SIGKILL.
 */
#include "../core/fmacros.h"

#include "prefork.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include "fcgi_loop.h"
#include "log.h"
#include "reload.h"
#include "clock.h"

#define PREFORK_YOUNG_MS 1000
#define PREFORK_DELAY_MIN_MS 100
#define PREFORK_DELAY_MAX_MS 5000
#define PREFORK_STOP_MS 10000

typedef struct prefork_slot {
    pid_t pid; /* 0 when no worker runs in this slot */
    int64_t started_ms;
    int64_t restart_at; /* when pid is 0: the time to start one */
    int64_t delay_ms;   /* the delay given after the last young death */
} prefork_slot;

/* The master's slots, file-level so that a worker (which runs inside prefork_run's call
 * tree, and exits there) can free the copy it inherited. */
static prefork_slot *prefork_slots;

static void prefork_on_chld(int sig)
{
    (void)sig; /* only there so that SIGCHLD is not discarded: it is taken by sigtimedwait */
}

/* In the child: the worker's whole life. Never returns. */
static void prefork_worker(rl_config *cfg, int listen_fd, const sigset_t *old_mask)
{
    struct sigaction sa;
    sigset_t mask = *old_mask;
    rl_error err;
    int code = 0;

#ifdef __linux__
    prctl(PR_SET_PDEATHSIG, SIGTERM); /* a master killed by SIGKILL leaves no orphans */
#endif
    free(prefork_slots); /* the master's bookkeeping, not ours */
    prefork_slots = NULL;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL;
    sigaction(SIGCHLD, &sa, NULL);
    sigaddset(&mask, SIGHUP); /* until fcgi_loop.c takes it */
    sigprocmask(SIG_SETMASK, &mask, NULL);
    if (listen_fd != 0) {
        if (dup2(listen_fd, 0) < 0) {
            log_error("worker: dup2: %s", strerror(errno));
            _exit(3);
        }
        close(listen_fd);
    }
    rl_limiter *lim = rl_limiter_open(cfg, &err);
    if (lim == NULL) {
        log_error("worker: cannot open the limiter: %s", err.text);
        _exit(3);
    }
    if (loop_run(&cfg, &lim) != 0)
        code = 3;
    rl_limiter_close(lim);
    rl_config_free(cfg);
    exit(code);
}

static int prefork_spawn(prefork_slot *s, rl_config *cfg, int listen_fd, const sigset_t *old_mask)
{
    pid_t pid = fork();

    if (pid < 0) {
        log_error("cannot fork a worker: %s", strerror(errno));
        s->restart_at = rl_clock_mono_ms() + PREFORK_DELAY_MAX_MS;
        return -1;
    }
    if (pid == 0)
        prefork_worker(cfg, listen_fd, old_mask);
    s->pid = pid;
    s->started_ms = rl_clock_mono_ms();
    return 0;
}

/* Records the death of pid in its slot and plans its restart. */
static void prefork_died(prefork_slot *slots, int n, pid_t pid, int status, int stopping)
{
    int64_t now = rl_clock_mono_ms();

    for (int i = 0; i < n; i++) {
        prefork_slot *s = &slots[i];
        if (s->pid != pid)
            continue;
        s->pid = 0;
        if (stopping)
            return;
        if (now - s->started_ms < PREFORK_YOUNG_MS)
            s->delay_ms = s->delay_ms == 0 ? PREFORK_DELAY_MIN_MS : s->delay_ms * 2;
        else
            s->delay_ms = 0;
        if (s->delay_ms > PREFORK_DELAY_MAX_MS)
            s->delay_ms = PREFORK_DELAY_MAX_MS;
        s->restart_at = now + s->delay_ms;
        if (WIFSIGNALED(status))
            log_error("worker %ld killed by signal %d (%s); restarting in %lld ms", (long)pid,
                      WTERMSIG(status), strsignal(WTERMSIG(status)), (long long)s->delay_ms);
        else
            log_error("worker %ld exited with status %d; restarting in %lld ms", (long)pid,
                      WEXITSTATUS(status), (long long)s->delay_ms);
        return;
    }
}

static int prefork_reap(prefork_slot *slots, int n, int stopping)
{
    int status, live = 0;
    pid_t pid;

    while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
        prefork_died(slots, n, pid, status, stopping);
    for (int i = 0; i < n; i++)
        live += slots[i].pid != 0;
    return live;
}

static void prefork_stop(prefork_slot *slots, int n)
{
    int64_t deadline = rl_clock_mono_ms() + PREFORK_STOP_MS;
    sigset_t chld;

    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    for (int i = 0; i < n; i++)
        if (slots[i].pid != 0)
            kill(slots[i].pid, SIGTERM);
    while (prefork_reap(slots, n, 1) > 0) {
        int64_t left = deadline - rl_clock_mono_ms();
        if (left <= 0) {
            for (int i = 0; i < n; i++)
                if (slots[i].pid != 0) {
                    log_warn("worker %ld did not stop in %d ms: killed", (long)slots[i].pid,
                             PREFORK_STOP_MS);
                    kill(slots[i].pid, SIGKILL);
                    waitpid(slots[i].pid, NULL, 0);
                    slots[i].pid = 0;
                }
            break;
        }
        struct timespec ts = {.tv_sec = left / 1000, .tv_nsec = (left % 1000) * 1000000};
        sigtimedwait(&chld, NULL, &ts);
    }
}

/* SIGHUP in the master: see the header comment. */
static void prefork_reload(rl_config **cfg, prefork_slot *slots, int n)
{
    rl_config *ncfg;

    log_info("master %ld: SIGHUP, reloading %s", (long)getpid(), rl_config_path(*cfg));
    if (reload_load(rl_config_path(*cfg), &ncfg, NULL) != 0)
        return;
    rl_config_free(*cfg);
    *cfg = ncfg;
    for (int i = 0; i < n; i++)
        if (slots[i].pid != 0)
            kill(slots[i].pid, SIGHUP);
}

int prefork_run(rl_config **cfgp, int listen_fd, int workers)
{
    prefork_slot *slots = prefork_slots = calloc((size_t)workers, sizeof *slots);
    sigset_t mask, old;
    struct sigaction sa;

    if (slots == NULL) {
        log_error("out of memory");
        return -1;
    }
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = prefork_on_chld;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGCHLD, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
    sigemptyset(&mask);
    sigaddset(&mask, SIGCHLD);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    sigprocmask(SIG_BLOCK, &mask, &old);

    log_info("master %ld: starting %d worker(s)", (long)getpid(), workers);
    for (;;) {
        int64_t now = rl_clock_mono_ms(), next = now + 60000;
        struct timespec ts;
        int sig;

        for (int i = 0; i < workers; i++) {
            prefork_slot *s = &slots[i];
            if (s->pid == 0 && s->restart_at <= now)
                prefork_spawn(s, *cfgp, listen_fd, &old);
            if (s->pid == 0 && s->restart_at < next)
                next = s->restart_at;
        }
        int64_t wait_ms = next > now ? next - now : 0;
        ts.tv_sec = wait_ms / 1000;
        ts.tv_nsec = (wait_ms % 1000) * 1000000;
        sig = sigtimedwait(&mask, NULL, &ts);
        if (sig == SIGTERM || sig == SIGINT) {
            log_info("master %ld: %s, stopping the workers", (long)getpid(), strsignal(sig));
            break;
        }
        if (sig == SIGHUP)
            prefork_reload(cfgp, slots, workers);
        prefork_reap(slots, workers, 0);
    }
    prefork_stop(slots, workers);
    free(slots);
    prefork_slots = NULL;
    sigprocmask(SIG_SETMASK, &old, NULL);
    log_info("master %ld: stopped", (long)getpid());
    return 0;
}
