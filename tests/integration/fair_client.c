// fair_client: how evenly a line-protocol server serves many connections.
//
//   fair_client PORT CONNECTIONS SECONDS KEYFILE
//
// Opens CONNECTIONS connections to 127.0.0.1:PORT; each keeps one request in
// flight (an AOR from KEYFILE, one per line) and sends the next as soon as
// the answer line arrives. Epoll, one thread, so that the client is not what
// limits the server. After a half-second warm-up, counts the answers each
// connection gets during SECONDS, and prints one line:
//   connections=N answers=TOTAL min=M median=D max=X
// Exits 1 if a connection fails or closes.
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

typedef struct {
  int fd;
  long answers;
  long at_start;
  int next_key;
} conn_t;

static char **keys;
static int nkeys;

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

static int send_request(conn_t *c) {
  const char *key = keys[c->next_key++ % nkeys];
  size_t len = strlen(key);
  return write(c->fd, key, len) == (ssize_t)len ? 0 : -1;
}

static int cmp_long(const void *a, const void *b) {
  long x = *(const long *)a, y = *(const long *)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: fair_client PORT CONNECTIONS SECONDS KEYFILE\n");
    return 2;
  }
  int port = atoi(argv[1]), n = atoi(argv[2]);
  double seconds = atof(argv[3]);
  FILE *f = fopen(argv[4], "r");
  if (!f) { perror("keys"); return 2; }
  char line[2048];
  int cap = 1024;
  keys = malloc(cap * sizeof *keys);
  while (fgets(line, sizeof line, f)) {
    size_t len = strcspn(line, "\r\n");
    if (len == 0) continue;
    if (nkeys == cap) keys = realloc(keys, (cap *= 2) * sizeof *keys);
    line[len] = '\n';
    line[len + 1] = 0;
    keys[nkeys++] = strdup(line);
  }
  fclose(f);
  if (nkeys == 0) { fprintf(stderr, "no keys\n"); return 2; }

  int ep = epoll_create1(0);
  conn_t *conns = calloc(n, sizeof *conns);
  struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons(port) };
  inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  for (int i = 0; i < n; i++) {
    conn_t *c = &conns[i];
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(c->fd, (struct sockaddr *)&addr, sizeof addr) < 0) { perror("connect"); return 1; }
    fcntl(c->fd, F_SETFL, O_NONBLOCK);
    c->next_key = i;
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
    epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
    if (send_request(c) < 0) { perror("write"); return 1; }
  }

  char buf[65536];
  struct epoll_event events[512];
  double start = now(), measure_from = start + 0.5, end = measure_from + seconds;
  int measuring = 0;
  for (;;) {
    double t = now();
    if (!measuring && t >= measure_from) {
      for (int i = 0; i < n; i++) conns[i].at_start = conns[i].answers;
      measuring = 1;
    }
    if (t >= end) break;
    int ready = epoll_wait(ep, events, 512, 100);
    for (int e = 0; e < ready; e++) {
      conn_t *c = events[e].data.ptr;
      for (;;) {
        ssize_t r = read(c->fd, buf, sizeof buf);
        if (r < 0 && errno == EAGAIN) break;
        if (r <= 0) { fprintf(stderr, "connection closed\n"); return 1; }
        // One request in flight: each LF ends its answer.
        for (ssize_t i = 0; i < r; i++) {
          if (buf[i] != '\n') continue;
          c->answers++;
          if (send_request(c) < 0) { perror("write"); return 1; }
        }
      }
    }
  }
  long *got = malloc(n * sizeof *got);
  long total = 0;
  for (int i = 0; i < n; i++) {
    got[i] = conns[i].answers - conns[i].at_start;
    total += got[i];
  }
  qsort(got, n, sizeof *got, cmp_long);
  printf("connections=%d answers=%ld min=%ld median=%ld max=%ld\n", n, total, got[0], got[n / 2],
         got[n - 1]);
  return 0;
}
