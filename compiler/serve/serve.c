/* serve.c - `vamos serve`: the LibreTranslate HTTP API over model
 * libraries (engine.h), on libmicrohttpd.
 *
 * Why libmicrohttpd: it is Debian's small, long-maintained embeddable HTTP
 * server in C (GNU, used by systemd-journal-remote), it parses HTTP and
 * form bodies (urlencoded and multipart) for us, enforces timeouts and
 * connection limits, and can stop accepting while requests finish
 * (MHD_quiesce_daemon), which SIGTERM needs.
 *
 * Threads: one per connection (MHD_USE_THREAD_PER_CONNECTION). A request
 * waits on its model's queue, from which the decoders take sentences into
 * their rows as rows free (engine.c). Routes: POST /translate, GET /languages, GET /health,
 * GET /frontend/settings. Errors: {"error": "..."} with 400, 403, 404,
 * 405, 429 or 500. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "engine.h"
#include "json.h"
#include "request.h"
#include "segment.h"

#define MAX_MODELS 32
#define MAX_BODY (4 << 20)   /* bytes of a request body */
#define MAX_KEYS 4096
#define RATE_SLOTS 4096      /* clients the per-minute limit tracks at once */

static const char usage[] =
    "usage: vamos serve LIB.so... [options]\n\n"
    "Serve the LibreTranslate HTTP API (POST /translate, GET /languages, GET /health)\n"
    "with the models of LIB.so, each a library built by\n"
    "  vamos build MODEL.vam -w W.safetensors --lib -o LIB.so [--langs SRC:TGT]\n"
    "which carries its language codes. Requests in flight are translated together:\n"
    "a sentence joins the running decoder as soon as a row frees (continuous batching).\n"
    "SIGTERM or SIGINT: finish the requests in flight, then exit.\n"
    "options:\n"
    "  --host ADDR          the IPv4 address to listen on (default 127.0.0.1;\n"
    "                       0.0.0.0: every interface)\n"
    "  --port N             the TCP port (default 5000)\n"
    "  --api-keys FILE      require an api_key from FILE (one key per line)\n"
    "  --char-limit N       refuse requests with more than N characters of text\n"
    "  --req-limit N        refuse more than N requests a minute from one client (429)\n"
    "  --threads N          threads of each model, one worker each (default: one per CPU)\n"
    "  --batch N            sentences a model decodes together at most, split between\n"
    "                       its workers (default 64)\n"
    "  --refill PCT         a worker takes more sentences once PCT percent of its rows\n"
    "                       are free (default 100: once all are; 1: as soon as one is)\n"
    "  --batch-wait MS      models built before continuous batching: how long a batch\n"
    "                       that is not full waits for more requests (default 5; 0: never)\n"
    "  --timeout SECONDS    drop a connection idle this long (default 30)\n";

typedef struct Rate {
    unsigned long addr;
    long minute;
    int count;
} Rate;

typedef struct Server {
    Served *models[MAX_MODELS];
    int nmodels;
    char **keys;
    int nkeys;
    long char_limit;
    int req_limit;
    pthread_mutex_t rate_mu;
    Rate rate[RATE_SLOTS];
    atomic_int active;
    atomic_long served, refused;
} Server;

/* One request's state across libmicrohttpd's calls. */
typedef struct Conn {
    char *body;
    size_t len, cap;
    size_t total;      /* bytes of body received */
    char field[64];    /* a form: the field being assembled in body */
    bool field_open;
    bool too_big, form, bad_field;
    struct MHD_PostProcessor *pp;
    Request req;
    char err[256];
} Conn;

/* ---------------------------------------------------------------- languages */

static const char *lang_name(const char *code)
{
    static const char *const names[][2] = {
        { "ar", "Arabic" }, { "ca", "Catalan" }, { "cs", "Czech" }, { "da", "Danish" }, { "de", "German" },
        { "el", "Greek" }, { "en", "English" }, { "es", "Spanish" }, { "eu", "Basque" }, { "fi", "Finnish" },
        { "fr", "French" }, { "gl", "Galician" }, { "hi", "Hindi" }, { "hu", "Hungarian" }, { "it", "Italian" },
        { "ja", "Japanese" }, { "ko", "Korean" }, { "nl", "Dutch" }, { "pl", "Polish" }, { "pt", "Portuguese" },
        { "ro", "Romanian" }, { "ru", "Russian" }, { "sv", "Swedish" }, { "tr", "Turkish" }, { "uk", "Ukrainian" },
        { "zh", "Chinese" },
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strcmp(names[i][0], code))
            return names[i][1];
    return code;
}

/* ---------------------------------------------------------------- responses */

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, json_buf *b)
{
    if (b->failed) {
        json_buf_free(b);
        static const char oom[] = "{\"error\": \"out of memory\"}";
        struct MHD_Response *r = MHD_create_response_from_buffer(sizeof oom - 1, (void *)oom, MHD_RESPMEM_PERSISTENT);
        enum MHD_Result rc = MHD_queue_response(c, 500, r);
        MHD_destroy_response(r);
        return rc;
    }
    struct MHD_Response *r = MHD_create_response_from_buffer(b->len, b->data, MHD_RESPMEM_MUST_FREE);
    if (r)
        b->data = NULL;   /* the response owns it now */
    json_buf_free(b);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", "application/json");
    MHD_add_response_header(r, "Access-Control-Allow-Origin", "*");
    enum MHD_Result rc = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return rc;
}

static enum MHD_Result error(Server *s, struct MHD_Connection *c, unsigned status, const char *msg)
{
    atomic_fetch_add(&s->refused, 1);
    json_buf b = { 0 };
    json_buf_puts(&b, "{\"error\": ");
    json_buf_string(&b, msg);
    json_buf_puts(&b, "}");
    return reply(c, status, &b);
}

static enum MHD_Result languages(Server *s, struct MHD_Connection *c)
{
    const char *codes[2 * MAX_MODELS];
    int n = 0;
    for (int i = 0; i < s->nmodels; i++)
        for (int k = 0; k < 2; k++) {
            const char *code = k ? served_target(s->models[i]) : served_source(s->models[i]);
            bool seen = false;
            for (int j = 0; j < n; j++)
                seen |= !strcmp(codes[j], code);
            if (!seen)
                codes[n++] = code;
        }
    json_buf b = { 0 };
    json_buf_puts(&b, "[");
    for (int j = 0; j < n; j++) {
        json_buf_puts(&b, j ? ", {\"code\": " : "{\"code\": ");
        json_buf_string(&b, codes[j]);
        json_buf_puts(&b, ", \"name\": ");
        json_buf_string(&b, lang_name(codes[j]));
        json_buf_puts(&b, ", \"targets\": [");
        int t = 0;
        for (int i = 0; i < s->nmodels; i++)
            if (!strcmp(served_source(s->models[i]), codes[j])) {
                json_buf_puts(&b, t++ ? ", " : "");
                json_buf_string(&b, served_target(s->models[i]));
            }
        json_buf_puts(&b, "]}");
    }
    json_buf_puts(&b, "]");
    return reply(c, 200, &b);
}

static enum MHD_Result settings(Server *s, struct MHD_Connection *c)
{
    json_buf b = { 0 };
    json_buf_puts(&b, "{\"charLimit\": ");
    json_buf_int(&b, s->char_limit > 0 ? s->char_limit : -1);
    json_buf_puts(&b, s->nkeys ? ", \"keyRequired\": true" : ", \"keyRequired\": false");
    json_buf_puts(&b, ", \"suggestions\": false, \"supportedFilesFormat\": []}");
    return reply(c, 200, &b);
}

/* ---------------------------------------------------------------- limits */

static bool key_ok(const Server *s, const char *key)
{
    for (int i = 0; key && i < s->nkeys; i++)
        if (!strcmp(s->keys[i], key))
            return true;
    return false;
}

/* Count a request of the client at addr; false when it is over the limit. */
static bool rate_ok(Server *s, unsigned long addr)
{
    if (s->req_limit <= 0)
        return true;
    long minute = (long)(time(NULL) / 60);
    pthread_mutex_lock(&s->rate_mu);
    Rate *r = &s->rate[(addr * 2654435761u) % RATE_SLOTS];
    if (r->addr != addr || r->minute != minute)   /* a new minute, or a client that took the slot */
        *r = (Rate){ addr, minute, 0 };
    bool ok = ++r->count <= s->req_limit;
    pthread_mutex_unlock(&s->rate_mu);
    return ok;
}

static unsigned long client_addr(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (!ci || !ci->client_addr)
        return 0;
    if (ci->client_addr->sa_family == AF_INET)
        return ((const struct sockaddr_in *)ci->client_addr)->sin_addr.s_addr;
    return 1;
}

/* ---------------------------------------------------------------- /translate */

/* The model for source -> target ("auto": the only source served). */
static Served *pick(Server *s, const char *source, const char *target, char *err, size_t errlen)
{
    bool automatic = !strcmp(source, "auto");
    const char *one = NULL;
    for (int i = 0; automatic && i < s->nmodels; i++) {
        if (one && strcmp(one, served_source(s->models[i]))) {
            snprintf(err, errlen, "source auto needs one source language; this server has several: give source");
            return NULL;
        }
        one = served_source(s->models[i]);
    }
    for (int i = 0; i < s->nmodels; i++)
        if ((automatic || !strcmp(source, served_source(s->models[i]))) && !strcmp(target, served_target(s->models[i])))
            return s->models[i];
    snprintf(err, errlen, "%.40s (%.40s) is not available as a source language; %.40s (%.40s) as a target",
             source, lang_name(source), target, lang_name(target));
    return NULL;
}

static enum MHD_Result translate(Server *s, struct MHD_Connection *c, Conn *k)
{
    Request *r = &k->req;
    char err[512];
    if (k->too_big)
        return error(s, c, 400, "Invalid request: the body is larger than 4 MB");
    if (k->bad_field)
        return error(s, c, 400, k->err);
    if (!k->form && request_from_json(r, k->body ? k->body : "", k->len, err, sizeof err))
        return error(s, c, 400, err);
    if (request_check(r, err, sizeof err))
        return error(s, c, 400, err);
    if (s->nkeys && !key_ok(s, r->api_key))
        return error(s, c, 403, r->api_key ? "Invalid API key" : "Please contact the server operator to get an API key");
    if (!rate_ok(s, client_addr(c)))
        return error(s, c, 429, "Too many request limits violations");
    long chars = request_chars(r);
    if (s->char_limit > 0 && chars > s->char_limit) {
        snprintf(err, sizeof err, "Invalid request: request (%ld) exceeds text limit (%ld)", chars, s->char_limit);
        return error(s, c, 400, err);
    }
    Served *m = pick(s, r->source, r->target, err, sizeof err);
    if (!m)
        return error(s, c, 400, err);
    bool html = r->format && !strcmp(r->format, "html");
    Pieces *ps = calloc((size_t)r->nq, sizeof *ps);
    const char **texts = NULL;
    char **outs = NULL;
    int total = 0, rc = ps ? 0 : -1;
    for (int i = 0; rc == 0 && i < r->nq; i++)
        rc = segment(r->q[i], html, &ps[i]) ? 0 : -1;
    for (int i = 0; rc == 0 && i < r->nq; i++)
        total += pieces_count(&ps[i]);
    if (rc == 0) {
        texts = malloc(sizeof *texts * (size_t)(total + 1));
        outs = calloc((size_t)total + 1, sizeof *outs);
        rc = texts && outs ? 0 : -1;
    }
    snprintf(err, sizeof err, "out of memory");
    for (int i = 0, n = 0; rc == 0 && i < r->nq; i++)
        for (int j = 0; j < ps[i].n; j++)
            if (ps[i].p[j].translate)
                texts[n++] = ps[i].p[j].text;
    if (rc == 0)
        rc = served_translate(m, texts, total, outs, err, sizeof err);
    json_buf b = { 0 };
    if (rc == 0) {
        json_buf_puts(&b, r->q_array ? "{\"translatedText\": [" : "{\"translatedText\": ");
        for (int i = 0, n = 0; i < r->nq; i++) {
            char *joined = pieces_join(&ps[i], outs + n);
            n += pieces_count(&ps[i]);
            json_buf_puts(&b, i ? ", " : "");
            json_buf_string(&b, joined ? joined : "");
            b.failed |= !joined;
            free(joined);
        }
        json_buf_puts(&b, r->q_array ? "]" : "");
        if (!strcmp(r->source, "auto")) {   /* as LibreTranslate answers auto */
            json_buf_puts(&b, ", \"detectedLanguage\": {\"confidence\": 100, \"language\": ");
            json_buf_string(&b, served_source(m));
            json_buf_puts(&b, "}");
        }
        json_buf_puts(&b, "}");
    }
    for (int i = 0; outs && i < total; i++)
        free(outs[i]);
    free(outs);
    free(texts);
    for (int i = 0; ps && i < r->nq; i++)
        pieces_free(&ps[i]);
    free(ps);
    if (rc)
        return error(s, c, 500, err);
    atomic_fetch_add(&s->served, 1);
    return reply(c, 200, &b);
}

/* ---------------------------------------------------------------- libmicrohttpd */

/* Append size bytes to k->body (NUL-terminated); false when out of memory.
 * The total is bounded by MAX_BODY before any call. */
static bool body_append(Conn *k, const char *data, size_t size)
{
    if (k->len + size + 1 > k->cap) {
        size_t cap = (k->len + size + 1) * 2;
        char *b = realloc(k->body, cap);
        if (!b)
            return false;
        k->body = b, k->cap = cap;
    }
    memcpy(k->body + k->len, data, size);
    k->len += size;
    k->body[k->len] = 0;
    return true;
}

/* A form field, complete: into the request. */
static void commit(Conn *k)
{
    if (k->field_open && !k->bad_field &&
        request_from_field(&k->req, k->field, k->body ? k->body : "", k->len, k->err, sizeof k->err))
        k->bad_field = true;
    k->field_open = false;
}

/* The post processor hands over each field's value in pieces (off 0
 * begins a field, which completes the one before): a value is assembled
 * in k->body, which a form body does not otherwise use. */
static enum MHD_Result form_piece(void *cls, enum MHD_ValueKind kind, const char *key, const char *filename,
                                  const char *content_type, const char *transfer_encoding, const char *data,
                                  uint64_t off, size_t size)
{
    (void)kind, (void)filename, (void)content_type, (void)transfer_encoding;
    Conn *k = cls;
    if (off == 0) {
        commit(k);
        snprintf(k->field, sizeof k->field, "%s", key ? key : "");
        k->field_open = true;
        k->len = 0;
    }
    if (!k->bad_field && !body_append(k, data, size)) {
        k->bad_field = true;
        snprintf(k->err, sizeof k->err, "out of memory");
    }
    return MHD_YES;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                              const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
    (void)version;
    Server *s = cls;
    Conn *k = *con_cls;
    bool post = !strcmp(method, "POST");
    if (!k) {   /* the first call: headers only */
        k = calloc(1, sizeof *k);
        if (!k)
            return MHD_NO;
        *con_cls = k;
        atomic_fetch_add(&s->active, 1);
        const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
        if (post && ct && (!strncasecmp(ct, "application/x-www-form-urlencoded", 33) || !strncasecmp(ct, "multipart/form-data", 19))) {
            k->form = true;
            k->pp = MHD_create_post_processor(c, 64 * 1024, form_piece, k);
            if (!k->pp) {
                k->bad_field = true;
                snprintf(k->err, sizeof k->err, "Invalid request: a form body this server cannot read");
            }
        }
        return MHD_YES;
    }
    if (*upload_size) {   /* a piece of the body */
        k->total += *upload_size;
        if (k->total > MAX_BODY)
            k->too_big = true;   /* form or not: nothing more is kept */
        if (k->too_big) {
            *upload_size = 0;
            return MHD_YES;
        }
        if (k->form && k->pp && !k->bad_field) {
            if (MHD_post_process(k->pp, upload, *upload_size) != MHD_YES && !k->bad_field) {
                k->bad_field = true;
                snprintf(k->err, sizeof k->err, "Invalid request: a malformed form body");
            }
        } else if (!k->form && !body_append(k, upload, *upload_size)) {
            k->too_big = true;   /* out of memory for it */
        }
        *upload_size = 0;
        return MHD_YES;
    }
    if (k->form) {   /* destroying the post processor hands over a last field it still holds */
        if (k->pp)
            MHD_destroy_post_processor(k->pp);
        k->pp = NULL;
        commit(k);
    }
    if (!strcmp(url, "/translate"))
        return post ? translate(s, c, k) : error(s, c, 405, "use POST for /translate");
    if (!strcmp(method, "GET") && !strcmp(url, "/languages"))
        return languages(s, c);
    if (!strcmp(method, "GET") && !strcmp(url, "/health")) {
        json_buf b = { 0 };
        json_buf_puts(&b, "{\"status\": \"ok\"}");
        return reply(c, 200, &b);
    }
    if (!strcmp(method, "GET") && !strcmp(url, "/frontend/settings"))
        return settings(s, c);
    return error(s, c, 404, "no such endpoint: POST /translate, GET /languages, GET /health");
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode why)
{
    (void)c, (void)why;
    Server *s = cls;
    Conn *k = *con_cls;
    if (!k)
        return;
    if (k->pp)
        MHD_destroy_post_processor(k->pp);
    request_free(&k->req);
    free(k->body);
    free(k);
    *con_cls = NULL;
    atomic_fetch_sub(&s->active, 1);
}

/* ---------------------------------------------------------------- main */

static int stop_pipe[2] = { -1, -1 };

static void on_signal(int sig)
{
    (void)sig;
    int saved = errno;
    if (write(stop_pipe[1], "x", 1) < 0) { /* the pipe is full: a stop is already pending */ }
    errno = saved;
}

static int load_keys(Server *s, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "vamos serve: --api-keys %s: %s\n", path, strerror(errno));
        return -1;
    }
    s->keys = calloc(MAX_KEYS, sizeof *s->keys);
    char line[512];
    for (int ln = 1; s->keys && fgets(line, sizeof line, f); ln++) {
        line[strcspn(line, "\r\n")] = 0;
        if (!line[0] || line[0] == '#')
            continue;
        if (s->nkeys == MAX_KEYS) {
            fprintf(stderr, "vamos serve: %s:%d: more than %d keys\n", path, ln, MAX_KEYS);
            fclose(f);
            return -1;
        }
        s->keys[s->nkeys++] = strdup(line);
    }
    fclose(f);
    if (!s->nkeys) {
        fprintf(stderr, "vamos serve: %s holds no key; every request would be refused\n", path);
        return -1;
    }
    return 0;
}

static long parse_long(const char *opt, const char *v, long lo, long hi, bool *bad)
{
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || *end || end == v || x < lo || x > hi) {
        fprintf(stderr, "vamos serve: %s needs an integer in %ld..%ld, not '%s'\n\n%s", opt, lo, hi, v, usage);
        *bad = true;
    }
    return x;
}

int cmd_serve_main(int argc, char **argv)
{
    static const struct option longs[] = {
        { "help", no_argument, 0, 'h' }, { "host", required_argument, 0, 'H' }, { "port", required_argument, 0, 'p' },
        { "api-keys", required_argument, 0, 'k' }, { "char-limit", required_argument, 0, 'c' },
        { "req-limit", required_argument, 0, 'r' }, { "threads", required_argument, 0, 'j' },
        { "timeout", required_argument, 0, 't' }, { "batch", required_argument, 0, 'b' },
        { "batch-wait", required_argument, 0, 'w' }, { "refill", required_argument, 0, 'f' }, { 0, 0, 0, 0 },
    };
    static Server s;   /* large (the rate table); one per process */
    const char *host = "127.0.0.1", *keys = NULL;
    long port = 5000, threads = 0, timeout = 30, batch = 0, wait = -1, refill = 0;
    bool bad = false;
    optind = 1;
    opterr = 0;
    int o;
    while ((o = getopt_long(argc, argv, ":h", longs, NULL)) != -1 && !bad) {
        switch (o) {
        case 'h': fputs(usage, stdout); return 0;
        case 'H': host = optarg; break;
        case 'p': port = parse_long("--port", optarg, 0, 65535, &bad); break;
        case 'k': keys = optarg; break;
        case 'c': s.char_limit = parse_long("--char-limit", optarg, 1, 1L << 30, &bad); break;
        case 'r': s.req_limit = (int)parse_long("--req-limit", optarg, 1, 1000000, &bad); break;
        case 'j': threads = parse_long("--threads", optarg, 1, 64, &bad); break;
        case 't': timeout = parse_long("--timeout", optarg, 1, 3600, &bad); break;
        case 'b': batch = parse_long("--batch", optarg, 1, 4096, &bad); break;
        case 'w': wait = parse_long("--batch-wait", optarg, 0, 1000, &bad); break;
        case 'f': refill = parse_long("--refill", optarg, 1, 100, &bad); break;
        case ':': fprintf(stderr, "vamos serve: option '%s' needs a value\n\n%s", argv[optind - 1], usage); return 2;
        default: fprintf(stderr, "vamos serve: unknown option '%s'\n\n%s", argv[optind - 1], usage); return 2;
        }
    }
    if (bad)
        return 2;
    if (optind >= argc) {
        fprintf(stderr, "vamos serve: missing LIB.so (a model built with vamos build --lib -o LIB.so)\n\n%s", usage);
        return 2;
    }
    if (argc - optind > MAX_MODELS) {
        fprintf(stderr, "vamos serve: at most %d models\n", MAX_MODELS);
        return 2;
    }
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) {
        fprintf(stderr, "vamos serve: --host needs an IPv4 address such as 127.0.0.1, not '%s'\n", host);
        return 2;
    }
    if (keys && load_keys(&s, keys))
        return 1;
    pthread_mutex_init(&s.rate_mu, NULL);
    int rc = 0;
    for (int i = optind; i < argc && rc == 0; i++) {
        char err[512];
        Served *m = served_open(argv[i], (int)threads, (int)batch, (int)wait, true, (int)refill, err, sizeof err);
        if (!m) {
            fprintf(stderr, "vamos serve: %s\n", err);
            rc = 1;
            break;
        }
        if (!served_source(m)[0] || !served_target(m)[0]) {
            fprintf(stderr, "vamos serve: %s carries no language codes: build it with --langs SRC:TGT\n", argv[i]);
            served_close(m);
            rc = 1;
            break;
        }
        for (int j = 0; j < s.nmodels; j++)
            if (!strcmp(served_source(s.models[j]), served_source(m)) && !strcmp(served_target(s.models[j]), served_target(m))) {
                fprintf(stderr, "vamos serve: %s and an earlier library both translate %s to %s\n", argv[i],
                        served_source(m), served_target(m));
                rc = 1;
            }
        s.models[s.nmodels++] = m;
        fprintf(stderr, "serving %s: %s -> %s (%s)\n", served_name(m), served_source(m), served_target(m), argv[i]);
    }
    struct MHD_Daemon *d = NULL;
    if (rc == 0 && (pipe(stop_pipe) || fcntl(stop_pipe[1], F_SETFL, O_NONBLOCK))) {   /* a signal never blocks */
        fprintf(stderr, "vamos serve: %s\n", strerror(errno));
        rc = 1;
    }
    if (rc == 0) {
        signal(SIGPIPE, SIG_IGN);
        struct sigaction sa = { .sa_handler = on_signal };
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
        d = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ITC,
                             (uint16_t)port, NULL, NULL, handle, &s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
                             MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)timeout, MHD_OPTION_CONNECTION_LIMIT, 512u,
                             MHD_OPTION_NOTIFY_COMPLETED, completed, &s, MHD_OPTION_END);
        if (!d) {
            fprintf(stderr, "vamos serve: cannot listen on %s:%ld: %s\n", host, port, strerror(errno));
            rc = 1;
        }
    }
    if (rc == 0) {
        const union MHD_DaemonInfo *di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
        fprintf(stderr, "listening on http://%s:%u (POST /translate, GET /languages); SIGTERM stops\n", host,
                di ? di->port : (unsigned)port);
        char x;
        while (read(stop_pipe[0], &x, 1) < 0 && errno == EINTR)
            ;
        fprintf(stderr, "vamos serve: stopping: finishing %d requests in flight\n", atomic_load(&s.active));
        MHD_socket ls = MHD_quiesce_daemon(d);
        for (int t = 0; t < 600 && atomic_load(&s.active) > 0; t++)   /* 60 s at most */
            nanosleep(&(struct timespec){ 0, 100000000 }, NULL);
        MHD_stop_daemon(d);
        if (ls != MHD_INVALID_SOCKET)
            close(ls);
        fprintf(stderr, "vamos serve: served %ld requests, refused %ld\n", atomic_load(&s.served),
                atomic_load(&s.refused));
        for (int i = 0; i < s.nmodels; i++) {
            long batches, sentences;
            double busy;
            served_counts(s.models[i], &batches, &sentences, &busy);
            fprintf(stderr, "vamos serve: %s: %ld sentences in %ld batches (%.1f a batch; workers translating %.0f%% of the time since the first)\n",
                    served_name(s.models[i]), sentences, batches, batches ? (double)sentences / (double)batches : 0.0,
                    100 * busy);
        }
    }
    for (int i = 0; i < s.nmodels; i++)
        served_close(s.models[i]);
    for (int i = 0; i < s.nkeys; i++)
        free(s.keys[i]);
    free(s.keys);
    return rc;
}
