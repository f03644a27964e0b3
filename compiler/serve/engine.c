/* engine.c - served models: dlopen, workers per model, batching (see
 * engine.h).
 *
 * A model has one worker per kernel thread (lanes): each takes the next
 * batch from the queue and runs it on its own thread with a translator of
 * its own, its kernels unsplit (the library's vamos_parallel_inline). On
 * 2 cores two such workers beat one whose every kernel is split between
 * two threads: those meet at each of a decoder step's hundreds of
 * kernels. */
#include "engine.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"   /* now_s */
#include "vamos/vamos.h"


typedef struct Job Job;

/* A job's sentence, as the feed tags it. */
typedef struct Sent { Job *job; int i; } Sent;

struct Job {
    const char *const *texts;
    int n;
    char **outs;
    int rc;
    char err[256];
    bool done;
    pthread_cond_t answered;   /* signalled (under the served model's mutex) when done */
    Job *next;
    Sent *sents;               /* streaming: [n] the tags */
    int handed, left;          /* streaming: sentences handed to a worker, answers still to come */
};

#define MAX_WORKERS 8

typedef struct Worker { Served *s; int w; } Worker;

struct Served {
    void *dl;
    const vamos_linked_model *lm;
    vamos_translator *t[MAX_WORKERS];   /* one per worker */
    /* the library's own API (each library holds a runtime) */
    vamos_translator *(*open)(const vamos_linked_model *, const vamos_settings *, char *, size_t);
    int (*lines)(vamos_translator *, const char *const *, int, char **, char *, size_t);
    void (*close)(vamos_translator *);
    const char *(*name)(const vamos_translator *);
    void (*set_threads)(int);
    int (*threads)(void);
    void (*inline_kernels)(int);
    int (*feed)(vamos_translator *, const vamos_feed *, char *, size_t);   /* NULL: an older library, batches */
    pthread_mutex_t mu;
    pthread_cond_t work;
    Job *head, *tail;
    bool stop;
    int nworkers, started;
    pthread_t worker[MAX_WORKERS];
    Worker arg[MAX_WORKERS];
    int batch_max;   /* sentences a batch takes at most; more wait for the next */
    int wait_ms;     /* how long a batch that is not full waits for more */
    int last_jobs;   /* requests in the last batch: more than one, and the next waits */
    long batches, sentences;
    double busy_s, first_s;   /* seconds workers spent translating; when the first batch began (0: none yet) */
    double idle_s;            /* streaming: seconds workers waited for sentences with none to decode */
};

static void serve_batch(Served *s, int w, Job *jobs)
{
    int total = 0;
    double t0 = now_s();
    for (Job *j = jobs; j; j = j->next)
        total += j->n;
    const char **texts = malloc(sizeof *texts * (size_t)(total ? total : 1));
    char **outs = calloc((size_t)(total ? total : 1), sizeof *outs);
    char err[256] = "out of memory";
    int rc = -1;
    if (texts && outs) {
        int k = 0;
        for (Job *j = jobs; j; j = j->next)
            for (int i = 0; i < j->n; i++)
                texts[k++] = j->texts[i];
        rc = s->lines(s->t[w], texts, total, outs, err, sizeof err);
    }
    double t1 = now_s();
    int k = 0;
    for (Job *j = jobs; j; j = j->next) {
        j->rc = rc;
        snprintf(j->err, sizeof j->err, "%s", rc ? err : "");
        for (int i = 0; i < j->n; i++, k++)
            j->outs[i] = rc == 0 ? outs[k] : NULL;
    }
    free(texts);
    free(outs);
    pthread_mutex_lock(&s->mu);
    s->batches++;
    s->sentences += total;
    s->busy_s += t1 - t0;
    if (s->first_s == 0)
        s->first_s = t0;
    for (Job *j = jobs, *next; j; j = next) {
        next = j->next;   /* read first: a job answered is its requester's */
        j->done = true;
        pthread_cond_signal(&j->answered);   /* its requester alone, not every one waiting */
    }
    pthread_mutex_unlock(&s->mu);
}

/* Streaming (the library's vamos_translate_feed): a worker's decoder asks
 * for up to max sentences whenever it has free rows, and blocks for them
 * only when it has none to decode. Sentences are handed out in the order
 * their requests came, a request's possibly to several workers. */
static int feed_next(void *ctx, int max, bool wait, const char **texts, void **tags)
{
    Served *s = ((Worker *)ctx)->s;
    pthread_mutex_lock(&s->mu);
    while (!s->head && !s->stop && wait) {
        double t0 = now_s();
        pthread_cond_wait(&s->work, &s->mu);
        if (s->first_s > 0)
            s->idle_s += now_s() - t0;
    }
    if (!s->head) {
        bool stop = s->stop;
        pthread_mutex_unlock(&s->mu);
        return stop ? -1 : 0;
    }
    int k = 0;
    while (k < max && s->head) {
        Job *j = s->head;
        for (; k < max && j->handed < j->n; k++, j->handed++) {
            texts[k] = j->texts[j->handed];
            tags[k] = &j->sents[j->handed];
        }
        if (j->handed == j->n && !(s->head = j->next))
            s->tail = NULL;
    }
    if (s->first_s == 0)
        s->first_s = now_s();
    s->batches++;
    pthread_mutex_unlock(&s->mu);
    return k;
}

static void feed_done(void *ctx, void *tag, char *out, const char *err)
{
    Served *s = ((Worker *)ctx)->s;
    Sent *se = tag;
    Job *j = se->job;
    pthread_mutex_lock(&s->mu);
    j->outs[se->i] = out;
    if (!out && j->rc == 0) {
        j->rc = -1;
        snprintf(j->err, sizeof j->err, "%s", err);
    }
    s->sentences++;
    if (--j->left == 0) {
        j->done = true;
        pthread_cond_signal(&j->answered);
    }
    pthread_mutex_unlock(&s->mu);
}

static void *worker(void *arg)
{
    Served *s = ((Worker *)arg)->s;
    int w = ((Worker *)arg)->w;
    if (s->nworkers > 1)
        s->inline_kernels(1);
    if (s->feed) {
        /* it returns when the server stops; an error (no memory for its
         * rows: every sentence taken was answered) is told, and the
         * worker starts again a moment later */
        vamos_feed f = { feed_next, feed_done, arg };
        char err[256];
        while (s->feed(s->t[w], &f, err, sizeof err)) {
            fprintf(stderr, "vamos serve: %s: %s\n", s->name(s->t[w]), err);
            pthread_mutex_lock(&s->mu);
            bool done = s->stop && !s->head;
            pthread_mutex_unlock(&s->mu);
            if (done)
                break;
            nanosleep(&(struct timespec){ 0, 100000000 }, NULL);
        }
        return NULL;
    }
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (!s->head && !s->stop)
            pthread_cond_wait(&s->work, &s->mu);
        if (!s->head)
            break;   /* stopping, and nothing is left */
        /* a batch that is not full yet waits a moment for the requests the
         * last batch's answers are about to bring */
        int queued = 0;
        for (Job *j = s->head; j; j = j->next)
            queued += j->n;
        if (queued < s->batch_max && s->wait_ms > 0 && s->last_jobs > 1 && !s->stop) {
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_nsec += s->wait_ms * 1000000L;
            until.tv_sec += until.tv_nsec / 1000000000L, until.tv_nsec %= 1000000000L;
            while (!s->stop && pthread_cond_timedwait(&s->work, &s->mu, &until) == 0) {
                queued = 0;
                for (Job *j = s->head; j; j = j->next)
                    queued += j->n;
                if (queued >= s->batch_max)
                    break;
            }
        }
        if (!s->head)
            continue;   /* another worker took them while this one waited */
        /* every job queued, up to a batch's sentences (a bigger first job
         * goes alone) */
        Job *first = s->head, *last = first;
        int n = first->n;
        while (last->next && n + last->next->n <= s->batch_max)
            n += last->next->n, last = last->next;
        s->head = last->next;
        if (!s->head)
            s->tail = NULL;
        last->next = NULL;
        s->last_jobs = 0;
        for (Job *j = first; j; j = j->next)
            s->last_jobs++;
        pthread_mutex_unlock(&s->mu);
        serve_batch(s, w, first);
        pthread_mutex_lock(&s->mu);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

Served *served_open(const char *path, int threads, int batch_max, int wait_ms, bool stream, int refill, char *err,
                    size_t errlen)
{
    Served *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->batch_max = batch_max > 0 ? batch_max : SERVED_BATCH;
    s->wait_ms = wait_ms >= 0 ? wait_ms : SERVED_WAIT_MS;
    /* a path without a slash would be searched for: open the file named */
    char full[4096];
    snprintf(full, sizeof full, "%s%s", strchr(path, '/') ? "" : "./", path);
    s->dl = dlopen(full, RTLD_NOW | RTLD_LOCAL);
    if (!s->dl) {
        snprintf(err, errlen, "%s: cannot open: %s", path, dlerror());
        free(s);
        return NULL;
    }
    const vamos_linked_model *const *lib = dlsym(s->dl, "vamos_library");
    s->open = (vamos_translator * (*)(const vamos_linked_model *, const vamos_settings *, char *, size_t)) dlsym(s->dl, "vamos_open");
    s->lines = (int (*)(vamos_translator *, const char *const *, int, char **, char *, size_t))dlsym(s->dl, "vamos_translate_lines");
    s->close = (void (*)(vamos_translator *))dlsym(s->dl, "vamos_close");
    s->name = (const char *(*)(const vamos_translator *))dlsym(s->dl, "vamos_name");
    s->set_threads = (void (*)(int))dlsym(s->dl, "vamos_set_threads");
    s->threads = (int (*)(void))dlsym(s->dl, "vamos_threads");
    s->inline_kernels = (void (*)(int))dlsym(s->dl, "vamos_parallel_inline");
    if (stream)
        s->feed = (int (*)(vamos_translator *, const vamos_feed *, char *, size_t))dlsym(s->dl, "vamos_translate_feed");
    if (!lib || !*lib || !s->open || !s->lines || !s->close || !s->name || !s->set_threads) {
        snprintf(err, errlen, "%s: not a model library (build it with vamos build --lib -o NAME.so)", path);
        dlclose(s->dl);
        free(s);
        return NULL;
    }
    s->lm = *lib;
    if (threads > 0)
        s->set_threads(threads);
    /* a worker per thread when the library can keep its kernels on the
     * calling thread (older libraries cannot: one worker, kernels split) */
    int want = s->threads && s->inline_kernels ? s->threads() : 1;
    s->nworkers = want < 1 ? 1 : want > MAX_WORKERS ? MAX_WORKERS : want;
    /* streaming: the batch's sentences split between the workers' rows */
    int per = s->batch_max / s->nworkers;
    vamos_settings rows = { .batch = per < 1 ? 1 : per > 4096 ? 4096 : per, .refill = refill };
    for (int w = 0; w < s->nworkers; w++)
        if (!(s->t[w] = s->open(s->lm, s->feed ? &rows : NULL, err, errlen))) {
            if (w == 0) {
                dlclose(s->dl);
                free(s);
                return NULL;
            }
            s->nworkers = w;   /* the workers there is memory for */
        }
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->work, NULL);
    for (int w = 0; w < s->nworkers; w++) {
        s->arg[w] = (Worker){ s, w };
        if (pthread_create(&s->worker[w], NULL, worker, &s->arg[w])) {
            if (w == 0) {
                snprintf(err, errlen, "cannot start a thread");
                served_close(s);
                return NULL;
            }
            break;
        }
        s->started = w + 1;
    }
    return s;
}

void served_close(Served *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    s->stop = true;
    pthread_cond_broadcast(&s->work);
    pthread_mutex_unlock(&s->mu);
    for (int w = 0; w < s->started; w++)
        pthread_join(s->worker[w], NULL);
    for (int w = 0; w < s->nworkers; w++)
        if (s->t[w])
            s->close(s->t[w]);
    s->set_threads(0);   /* joins the library's kernel threads: its code may go */
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->work);
    dlclose(s->dl);
    free(s);
}

const char *served_name(const Served *s) { return s->name(s->t[0]); }
const char *served_source(const Served *s) { return s->lm->source_lang ? s->lm->source_lang : ""; }
const char *served_target(const Served *s) { return s->lm->target_lang ? s->lm->target_lang : ""; }

int served_translate(Served *s, const char *const *texts, int n, char **outs, char *err, size_t errlen)
{
    if (n == 0)
        return 0;
    Job j = { .texts = texts, .n = n, .outs = outs, .left = n };
    if (s->feed && !(j.sents = malloc(sizeof *j.sents * (size_t)n))) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (int i = 0; s->feed && i < n; i++) {
        j.sents[i] = (Sent){ &j, i };
        outs[i] = NULL;
    }
    pthread_cond_init(&j.answered, NULL);
    pthread_mutex_lock(&s->mu);
    if (s->stop) {
        pthread_mutex_unlock(&s->mu);
        pthread_cond_destroy(&j.answered);
        free(j.sents);
        snprintf(err, errlen, "the server is stopping");
        return -1;
    }
    if (s->tail)
        s->tail->next = &j;
    else
        s->head = &j;
    s->tail = &j;
    pthread_cond_signal(&s->work);
    while (!j.done)
        pthread_cond_wait(&j.answered, &s->mu);
    pthread_mutex_unlock(&s->mu);
    pthread_cond_destroy(&j.answered);
    free(j.sents);
    if (j.rc) {
        snprintf(err, errlen, "%s", j.err);
        for (int i = 0; s->feed && i < n; i++) {   /* the sentences answered before one failed */
            free(outs[i]);
            outs[i] = NULL;
        }
    }
    return j.rc;
}

void served_counts(const Served *s, long *batches, long *sentences, double *busy)
{
    pthread_mutex_lock((pthread_mutex_t *)&s->mu);
    *batches = s->batches, *sentences = s->sentences;
    double span = s->first_s > 0 ? now_s() - s->first_s : 0;
    double busy_s = s->feed ? span * s->nworkers - s->idle_s : s->busy_s;
    *busy = span > 0 ? busy_s / (span * s->nworkers) : 0;
    pthread_mutex_unlock((pthread_mutex_t *)&s->mu);
}
