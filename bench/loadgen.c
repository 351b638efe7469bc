// loadgen: a closed-loop load generator for sipdir's line protocol and for
// Redis GET, so that both servers can be measured with the same client.
//
//   loadgen -h HOST -p PORT -k KEYFILE -c CONNECTIONS -P IN_FLIGHT -d SECONDS
//           -m line|redis [-w WARMUP_SECONDS]
//
// Opens CONNECTIONS connections; each keeps exactly IN_FLIGHT requests
// outstanding (all of them at the start, then one more each time one is
// answered) and walks the keys of KEYFILE (one AOR a line) from its own
// offset. Mode line sends "AOR\n" and reads one line per answer; mode redis
// sends what client libraries send, "*2\r\n$3\r\nGET\r\n$<len>\r\n<key>\r\n",
// and reads "$<n>\r\n<n bytes>\r\n" or "$-1\r\n". Every key is in the data, so
// an empty line, a nil or error reply, or an answer without
// "addressOfRecord":"<key>" counts as an error.
//
// One thread, epoll, one read and one write per ready socket (a full read
// buffer is read again), so that the client costs as little CPU as possible.
// Latency is from the write that carried a request to the read that completed
// its answer (CLOCK_MONOTONIC, read once per read). After the warm-up, the
// answers completed during SECONDS are counted and their latencies kept, all
// of them, for exact percentiles; then the answers still in flight are read
// (up to 2 s) and the connections closed. Prints one line:
//
//   ops=N ops_per_s=N p50_us=N p99_us=N p999_us=N max_us=N errors=N conns=C inflight=P
//
// Exit status: 0, 1 if any answer was wrong, 2 for bad usage, 3 if a
// connection failed or was closed by the server.
//
// Build: cc -O2 -o loadgen bench/loadgen.c
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum mode { MODE_LINE, MODE_REDIS };

// A request, built once per key: the bytes to send and what its answer must contain.
typedef struct {
  char *request;
  size_t request_len;
  char *needle; // "addressOfRecord":"<key, JSON-escaped>"
  size_t needle_len;
} key_t_;

// One request on the wire: which key, and when it was written.
typedef struct {
  int key;
  uint64_t sent_ns;
} pending_t;

typedef struct {
  int fd;
  int index;
  int next_key;
  // Requests in flight, oldest first: a ring of `inflight` entries.
  pending_t *ring;
  int ring_head;
  int ring_count;
  // Bytes read and not yet parsed: in[0, in_len).
  char *in;
  size_t in_len;
  size_t in_cap;
  // Bytes to write: out[out_off, out_len).
  char *out;
  size_t out_off;
  size_t out_len;
  size_t out_cap;
  int want_write; // EPOLLOUT is armed
  long answers;
} conn_t;

static key_t_ *keys;
static int nkeys;
static enum mode mode;
static int inflight = 1;
static int epfd;

// Samples: latencies (ns) of the answers completed in the measured window.
static uint64_t *samples;
static size_t nsamples, samples_cap;
static long errors;
static int measuring;
// After the window: no new requests, the answers in flight are read (and checked) before closing,
// so that no connection ends with unread answers (a reset, which the server would count as an error).
static int draining;
static long outstanding;

static void die(int status, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("loadgen: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  exit(status);
}

static void *xmalloc(size_t n) {
  void *p = malloc(n);
  if (!p) die(3, "out of memory");
  return p;
}

static void *xrealloc(void *p, size_t n) {
  p = realloc(p, n);
  if (!p) die(3, "out of memory");
  return p;
}

static uint64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

// --- keys -------------------------------------------------------------------

// The needle for `key`: the key as JSON would spell it inside a string.
static char *make_needle(const char *key, size_t len, size_t *out_len) {
  const char *prefix = "\"addressOfRecord\":\"";
  size_t plen = strlen(prefix);
  char *s = xmalloc(plen + len * 6 + 2);
  memcpy(s, prefix, plen);
  size_t n = plen;
  for (size_t i = 0; i < len; i++) {
    unsigned char ch = (unsigned char)key[i];
    if (ch == '"' || ch == '\\') {
      s[n++] = '\\';
      s[n++] = (char)ch;
    } else if (ch < 0x20) {
      n += (size_t)sprintf(s + n, "\\u%04x", ch);
    } else {
      s[n++] = (char)ch;
    }
  }
  s[n++] = '"';
  s[n] = 0;
  *out_len = n;
  return s;
}

static void add_key(const char *key, size_t len) {
  static int cap;
  if (nkeys == cap) {
    cap = cap ? cap * 2 : 1024;
    keys = xrealloc(keys, (size_t)cap * sizeof *keys);
  }
  key_t_ *k = &keys[nkeys++];
  if (mode == MODE_LINE) {
    k->request = xmalloc(len + 1);
    memcpy(k->request, key, len);
    k->request[len] = '\n';
    k->request_len = len + 1;
  } else {
    char head[64];
    int hlen = snprintf(head, sizeof head, "*2\r\n$3\r\nGET\r\n$%zu\r\n", len);
    k->request = xmalloc((size_t)hlen + len + 2);
    memcpy(k->request, head, (size_t)hlen);
    memcpy(k->request + hlen, key, len);
    memcpy(k->request + hlen + len, "\r\n", 2);
    k->request_len = (size_t)hlen + len + 2;
  }
  k->needle = make_needle(key, len, &k->needle_len);
}

static void read_keys(const char *path) {
  FILE *f = fopen(path, "r");
  if (!f) die(2, "cannot open key file %s: %s", path, strerror(errno));
  char *line = NULL;
  size_t cap = 0;
  ssize_t got;
  while ((got = getline(&line, &cap, f)) >= 0) {
    size_t len = (size_t)got;
    while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) len--;
    if (len > 0) add_key(line, len);
  }
  free(line);
  fclose(f);
  if (nkeys == 0) die(2, "no keys in %s", path);
}

// --- samples ----------------------------------------------------------------

static void record(uint64_t latency_ns) {
  if (nsamples == samples_cap) {
    samples_cap = samples_cap ? samples_cap * 2 : 1 << 20;
    samples = xrealloc(samples, samples_cap * sizeof *samples);
  }
  samples[nsamples++] = latency_ns;
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

// The nearest-rank percentile of the sorted samples, in µs.
static uint64_t percentile_us(double p) {
  if (nsamples == 0) return 0;
  size_t rank = (size_t)(p / 100.0 * (double)nsamples + 0.999999);
  if (rank < 1) rank = 1;
  if (rank > nsamples) rank = nsamples;
  return (samples[rank - 1] + 500) / 1000;
}

// --- connections ------------------------------------------------------------

static void set_interest(conn_t *c, int want_write) {
  if (c->want_write == want_write) return;
  struct epoll_event ev = {.events = EPOLLIN | (want_write ? EPOLLOUT : 0), .data.ptr = c};
  if (epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev) < 0) die(3, "epoll_ctl: %s", strerror(errno));
  c->want_write = want_write;
}

// Queues the connection's next request.
static void queue_request(conn_t *c, uint64_t t) {
  key_t_ *k = &keys[c->next_key];
  c->next_key = (c->next_key + 1) % nkeys;
  if (c->out_len + k->request_len > c->out_cap) {
    if (c->out_off > 0) {
      memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
      c->out_len -= c->out_off;
      c->out_off = 0;
    }
    while (c->out_len + k->request_len > c->out_cap) c->out_cap *= 2;
    c->out = xrealloc(c->out, c->out_cap);
  }
  memcpy(c->out + c->out_len, k->request, k->request_len);
  c->out_len += k->request_len;
  pending_t *p = &c->ring[(c->ring_head + c->ring_count) % inflight];
  p->key = (int)(k - keys);
  p->sent_ns = t;
  c->ring_count++;
  outstanding++;
}

// Writes what is queued; arms EPOLLOUT if the socket cannot take it all.
static void flush(conn_t *c) {
  while (c->out_off < c->out_len) {
    ssize_t w = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      die(3, "connection %d: write: %s", c->index, strerror(errno));
    }
    c->out_off += (size_t)w;
  }
  if (c->out_off == c->out_len) c->out_off = c->out_len = 0;
  set_interest(c, c->out_len > 0);
}

static void report_error(conn_t *c, int key, const char *what, const char *answer, size_t len) {
  errors++;
  if (errors <= 5) {
    fprintf(stderr, "loadgen: connection %d, key %.*s: %s: %.*s%s\n", c->index,
            (int)(keys[key].needle_len - 20), keys[key].needle + 19, what,
            (int)(len > 200 ? 200 : len), answer, len > 200 ? "..." : "");
  }
}

// Completes the oldest request of `c` with `answer` (the payload, without framing).
static void complete(conn_t *c, const char *answer, size_t len, int nil, uint64_t t) {
  if (c->ring_count == 0) die(3, "connection %d: an answer to no request", c->index);
  pending_t *p = &c->ring[c->ring_head];
  c->ring_head = (c->ring_head + 1) % inflight;
  c->ring_count--;
  c->answers++;
  outstanding--;
  if (measuring) record(t - p->sent_ns);
  key_t_ *k = &keys[p->key];
  if (nil) report_error(c, p->key, "nil", "", 0);
  else if (len == 0) report_error(c, p->key, "empty answer", "", 0);
  else if (!memmem(answer, len, k->needle, k->needle_len))
    report_error(c, p->key, "wrong answer", answer, len);
}

// Parses one answer at the start of in[*pos, in_len): 1 if complete, 0 if more bytes are needed.
static int parse_line(conn_t *c, size_t *pos, uint64_t t) {
  char *start = c->in + *pos;
  char *nl = memchr(start, '\n', c->in_len - *pos);
  if (!nl) return 0;
  size_t len = (size_t)(nl - start);
  if (len > 0 && start[len - 1] == '\r') len--;
  complete(c, start, len, 0, t);
  *pos = (size_t)(nl - c->in) + 1;
  return 1;
}

static int parse_redis(conn_t *c, size_t *pos, uint64_t t) {
  char *start = c->in + *pos;
  size_t avail = c->in_len - *pos;
  char *nl = memchr(start, '\n', avail);
  if (!nl) return 0;
  size_t head = (size_t)(nl - start) + 1; // through the LF
  if (head < 3 || nl[-1] != '\r')
    die(3, "connection %d: malformed reply line: %.*s", c->index, (int)head, start);
  if (start[0] == '-' || start[0] == '+' || start[0] == ':') {
    // An error (or some other one-line reply) where a bulk string belongs.
    complete(c, start, head - 2, 0, t);
    *pos += head;
    return 1;
  }
  if (start[0] != '$') die(3, "connection %d: unexpected reply: %.*s", c->index, (int)head, start);
  char *end;
  long n = strtol(start + 1, &end, 10);
  if (end != nl - 1 || n < -1) die(3, "connection %d: bad bulk length: %.*s", c->index, (int)head, start);
  if (n == -1) {
    complete(c, NULL, 0, 1, t);
    *pos += head;
    return 1;
  }
  size_t total = head + (size_t)n + 2;
  if (avail < total) {
    // Make room for the whole reply, so that the next reads can complete it.
    size_t need = *pos + total;
    if (need > c->in_cap) {
      while (need > c->in_cap) c->in_cap *= 2;
      c->in = xrealloc(c->in, c->in_cap);
    }
    return 0;
  }
  start = c->in + *pos;
  if (start[total - 2] != '\r' || start[total - 1] != '\n')
    die(3, "connection %d: bulk reply not ended by CRLF", c->index);
  complete(c, start + head, (size_t)n, 0, t);
  *pos += total;
  return 1;
}

// Reads what is there, completes every whole answer and queues one request per answer.
static void on_readable(conn_t *c) {
  for (;;) {
    if (c->in_len == c->in_cap) {
      c->in_cap *= 2;
      c->in = xrealloc(c->in, c->in_cap);
    }
    size_t room = c->in_cap - c->in_len;
    ssize_t r = read(c->fd, c->in + c->in_len, room);
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      die(3, "connection %d: read: %s", c->index, strerror(errno));
    }
    if (r == 0) die(3, "connection %d: closed by the server after %ld answers", c->index, c->answers);
    c->in_len += (size_t)r;
    uint64_t t = now_ns();
    size_t pos = 0;
    int answered = 0;
    while (pos < c->in_len && (mode == MODE_LINE ? parse_line(c, &pos, t) : parse_redis(c, &pos, t)))
      answered++;
    if (pos > 0) {
      memmove(c->in, c->in + pos, c->in_len - pos);
      c->in_len -= pos;
    }
    if (!draining)
      for (int i = 0; i < answered; i++) queue_request(c, t);
    if (answered) flush(c);
    if ((size_t)r < room) return; // drained: level-triggered epoll tells us when there is more
  }
}

// Waits up to timeout_ms for ready sockets and serves them.
static void poll_once(int timeout_ms) {
  struct epoll_event events[1024];
  int ready = epoll_wait(epfd, events, 1024, timeout_ms);
  if (ready < 0) {
    if (errno == EINTR) return;
    die(3, "epoll_wait: %s", strerror(errno));
  }
  for (int e = 0; e < ready; e++) {
    conn_t *c = events[e].data.ptr;
    if (events[e].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) on_readable(c);
    if (events[e].events & EPOLLOUT) flush(c);
  }
}

static struct addrinfo *resolve(const char *host, const char *port) {
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
  struct addrinfo *res;
  int rc = getaddrinfo(host, port, &hints, &res);
  if (rc != 0) die(3, "cannot resolve %s:%s: %s", host, port, gai_strerror(rc));
  return res;
}

static void open_conn(conn_t *c, int index, struct addrinfo *addr, const char *host,
                      const char *port) {
  c->index = index;
  c->fd = socket(addr->ai_family, SOCK_STREAM, 0);
  if (c->fd < 0) die(3, "connection %d: socket: %s", index, strerror(errno));
  int one = 1;
  setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (connect(c->fd, addr->ai_addr, addr->ai_addrlen) < 0)
    die(3, "connection %d: cannot connect to %s:%s: %s", index, host, port, strerror(errno));
  if (fcntl(c->fd, F_SETFL, O_NONBLOCK) < 0) die(3, "fcntl: %s", strerror(errno));
  c->ring = xmalloc((size_t)inflight * sizeof *c->ring);
  c->in_cap = 16384;
  c->in = xmalloc(c->in_cap);
  c->out_cap = 4096;
  c->out = xmalloc(c->out_cap);
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
  if (epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0) die(3, "epoll_ctl: %s", strerror(errno));
}

static void raise_fd_limit(int connections) {
  struct rlimit lim;
  if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    setrlimit(RLIMIT_NOFILE, &lim);
    getrlimit(RLIMIT_NOFILE, &lim);
  }
  if (lim.rlim_cur != RLIM_INFINITY && (rlim_t)connections + 16 > lim.rlim_cur)
    die(3, "%d connections need more descriptors than the limit, %lu", connections,
        (unsigned long)lim.rlim_cur);
}

static void usage(void) {
  fprintf(stderr,
          "usage: loadgen -h HOST -p PORT -k KEYFILE -c CONNECTIONS -P IN_FLIGHT -d SECONDS\n"
          "               -m line|redis [-w WARMUP_SECONDS]\n");
  exit(2);
}

int main(int argc, char **argv) {
  const char *host = "127.0.0.1", *port = NULL, *keyfile = NULL, *mode_name = NULL;
  int connections = 1;
  double seconds = 0, warmup = 0.5;
  int opt;
  while ((opt = getopt(argc, argv, "h:p:k:c:P:d:m:w:")) != -1) {
    switch (opt) {
    case 'h': host = optarg; break;
    case 'p': port = optarg; break;
    case 'k': keyfile = optarg; break;
    case 'c': connections = atoi(optarg); break;
    case 'P': inflight = atoi(optarg); break;
    case 'd': seconds = atof(optarg); break;
    case 'm': mode_name = optarg; break;
    case 'w': warmup = atof(optarg); break;
    default: usage();
    }
  }
  if (optind != argc || !port || !keyfile || !mode_name || connections < 1 || inflight < 1 ||
      seconds <= 0 || warmup < 0)
    usage();
  if (strcmp(mode_name, "line") == 0) mode = MODE_LINE;
  else if (strcmp(mode_name, "redis") == 0) mode = MODE_REDIS;
  else usage();

  read_keys(keyfile);
  raise_fd_limit(connections);
  epfd = epoll_create1(0);
  if (epfd < 0) die(3, "epoll_create1: %s", strerror(errno));
  struct addrinfo *addr = resolve(host, port);
  conn_t *conns = calloc((size_t)connections, sizeof *conns);
  if (!conns) die(3, "out of memory");
  for (int i = 0; i < connections; i++) {
    open_conn(&conns[i], i, addr, host, port);
    // Spread the connections' starting points over the keys.
    conns[i].next_key = (int)((long long)i * nkeys / connections);
  }
  freeaddrinfo(addr);

  // All connected: every connection sends its first IN_FLIGHT requests.
  uint64_t t0 = now_ns();
  for (int i = 0; i < connections; i++) {
    for (int j = 0; j < inflight; j++) queue_request(&conns[i], t0);
    flush(&conns[i]);
  }

  uint64_t measure_from = t0 + (uint64_t)(warmup * 1e9);
  uint64_t measure_to = measure_from + (uint64_t)(seconds * 1e9);
  measuring = warmup == 0;
  for (;;) {
    uint64_t t = now_ns();
    if (!measuring && t >= measure_from) measuring = 1;
    if (t >= measure_to) break;
    uint64_t until = measuring ? measure_to : measure_from;
    poll_once((int)((until - t) / 1000000) + 1);
  }
  double window = (double)(now_ns() - measure_from) / 1e9;
  measuring = 0;
  draining = 1;
  uint64_t drain_until = now_ns() + 2000000000u;
  while (outstanding > 0 && now_ns() < drain_until) poll_once(100);
  for (int i = 0; i < connections; i++) close(conns[i].fd);

  // Errors during the warm-up count too: a wrong answer is wrong whenever it comes.
  qsort(samples, nsamples, sizeof *samples, cmp_u64);
  printf("ops=%zu ops_per_s=%.0f p50_us=%llu p99_us=%llu p999_us=%llu max_us=%llu errors=%ld "
         "conns=%d inflight=%d\n",
         nsamples, (double)nsamples / window, (unsigned long long)percentile_us(50),
         (unsigned long long)percentile_us(99), (unsigned long long)percentile_us(99.9),
         (unsigned long long)(nsamples ? (samples[nsamples - 1] + 500) / 1000 : 0), errors,
         connections, inflight);
  return errors > 0 ? 1 : 0;
}
