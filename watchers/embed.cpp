#include "embed.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdio>
#include <mutex>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "../core/access.hpp"
#include "../core/fd_check.hpp"

namespace evw {

static_assert(sizeof(detail::EvStorage<360>) >= sizeof(ev_embed));

namespace {

void embed_callback(struct ev_loop*, ev_embed* w, int revents) noexcept {
  detail::dispatch(*static_cast<Embed*>(w->data), revents);
}

// libev's prepare watcher of an ev_embed (embed_prepare_cb) applies the
// other loop's pending fd changes itself (fd_reify), from the embedding loop
// and so before the other loop's prepare watchers run: an Io of the other
// loop whose fd was closed since its start() would make libev assert there.
// evw's closed-fd check of the other loop (fd_check.hpp) runs first.
void (*libev_embed_prepare)(struct ev_loop*, ev_prepare*, int) = nullptr;

void embed_prepare(struct ev_loop* raw, ev_prepare* prepare, int revents) noexcept {
  auto* w = reinterpret_cast<ev_embed*>(reinterpret_cast<char*>(prepare) - offsetof(ev_embed, prepare));
  auto& self = *static_cast<Embed*>(w->data);
  // Active (libev runs its prepare), so the other loop exists: it stops us when it dies.
  if (self.other_exists())
    if (detail::FdCheck* check = detail::Access::fd_check(self.other())) check->run_now();
  libev_embed_prepare(raw, prepare, revents);
}

std::string backend_names(unsigned backends) {
  static constexpr std::pair<unsigned, const char*> names[] = {
      {Backend::Select, "select"}, {Backend::Poll, "poll"},       {Backend::Epoll, "epoll"},
      {Backend::Kqueue, "kqueue"}, {Backend::DevPoll, "devpoll"}, {Backend::Port, "port"},
      {Backend::LinuxAio, "linuxaio"}, {Backend::IoUring, "io_uring"}};
  std::string out;
  for (auto [bit, name] : names)
    if (backends & bit) out += (out.empty() ? "" : ", ") + std::string(name);
  return out.empty() ? "none" : out;
}

// libev 4.33 lists io_uring as embeddable, but an io_uring loop has no
// backend descriptor (-1) and ev_embed_start asserts on it.
unsigned embeddable() noexcept { return ev_embeddable_backends() & ~unsigned{EVBACKEND_IOURING}; }

void check(const Loop* loop, const Loop& other) {
  if (loop == &other) detail::throw_invalid("Embed", "other", "is the embedding loop itself");
  // libev asserts that the embedded loop's backend is embeddable.
  const unsigned backend = other.backend();
  const unsigned usable = embeddable() & ev_supported_backends();
  if ((backend & embeddable()) == 0)
    detail::throw_invalid("Embed", "other",
                          "uses backend " + backend_names(backend) +
                              ", which cannot be embedded (embeddable here: " +
                              backend_names(usable) + ")");
}

// (embedding loop, embedded loop) of every active Embed, to refuse circles
// and over-deep chains: the kernel would refuse to nest the epoll sets (ELOOP)
// and libev asserts on that. An Embed stopped after its loop ran an iteration
// (when libev registers it with the kernel) still counts: libev leaves that
// registration in place (it deletes lazily, on the next event nobody wants),
// so the nesting may last until either loop is destroyed.
struct Edge {
  const Loop* from;
  const Loop* to;
  int active;       // started Embeds of this pair
  bool lingering;   // one was stopped after libev had registered it
};
std::mutex edges_mutex;
std::vector<Edge> edges;

// ~Loop: the loop's epoll set is closed, and every nesting through it with it.
void forget_loop(const Loop& loop) noexcept {
  std::lock_guard lock(edges_mutex);
  std::erase_if(edges, [&](const Edge& e) { return e.from == &loop || e.to == &loop; });
}

bool embeds(const Loop* outer, const Loop* target) {  // edges_mutex held
  std::vector<const Loop*> todo{outer};
  std::vector<const Loop*> seen;
  while (!todo.empty()) {
    const Loop* l = todo.back();
    todo.pop_back();
    if (l == target) return true;
    if (std::find(seen.begin(), seen.end(), l) != seen.end()) continue;
    seen.push_back(l);
    for (const Edge& e : edges)
      if (e.from == l) todo.push_back(e.to);
  }
  return false;
}

// The kernel nests epoll sets at most 5 deep (EPOLL_MAX_NESTS: ELOOP beyond),
// and libev aborts on ELOOP when it registers an embedded loop's descriptor.
// A chain of embedded loops nests their epoll sets; one level is kept for the
// EPOLLPRI set a loop creates for Priority/Gpio watchers.
constexpr int kMaxChain = 4;

// Loops on the longest chain of embeddings (see Edge) that ends at (up) or
// starts from (down) l, l included.
int chain(const Loop* l, bool up) {  // edges_mutex held; no circles
  int longest = 0;
  for (const Edge& e : edges)
    if ((up ? e.to : e.from) == l) longest = std::max(longest, chain(up ? e.from : e.to, up));
  return longest + 1;
}

}  // namespace

Embed::Embed(Loop& loop, Loop& other, Callback cb) : Watcher(loop, &ev_, "Embed", std::move(cb)) {
  check(&loop, other);
  ev_set_cb(detail::ev_of<ev_embed>(*this), embed_callback);
  watch(other);
}

Embed::Embed(Loop& loop, Loop& other) : Embed(loop, other, [](Embed& w, int) { w.sweep(); }) {}

Embed::~Embed() { stop(); }

Embed::Embed(Embed&& other)
    : Watcher(std::move(other), &ev_),
      other_(std::exchange(other.other_, nullptr)),
      guard_(std::move(other.guard_)),
      started_at_(other.started_at_) {
  finish_move(other, sizeof ev_);
}

void Embed::set(Loop& other) {
  check(detail::Access::loop(*this), other);  // a detached Embed may still be configured
  Frozen frozen = freeze();
  watch(other);
  thaw(frozen);
}

void Embed::watch(Loop& other) {
  guard_ = std::make_unique<Cleanup>(other, [this](Cleanup&, int) { stop(); });
  other_ = &other;
  ev_embed_set(detail::ev_of<ev_embed>(*this), other.raw());
}

void Embed::sweep() { other().run(Run::NoWait); }

Loop& Embed::other() const {
  if (!other_exists())
    throw std::logic_error("evw::Embed: the embedded loop has been destroyed");
  return *other_;
}

void Embed::start_impl() {
  Loop& inner = other();
  std::lock_guard lock(edges_mutex);
  const auto known = static_cast<std::size_t>(
      std::find_if(edges.begin(), edges.end(),
                   [&](const Edge& e) { return e.from == &loop() && e.to == &inner; }) -
      edges.begin());
  if (known == edges.size()) {
    if (embeds(&inner, &loop()))
      throw std::logic_error(
          "evw::Embed::start: the other loop embeds (or embedded, with an Embed since stopped) "
          "this loop, directly or through others; loops cannot embed each other in a circle");
    if (const int loops = chain(&loop(), true) + chain(&inner, false); loops > kMaxChain)
      throw std::logic_error("evw::Embed::start: this would make a chain of " + std::to_string(loops) +
                             " embedded loops (stopped Embeds count until a loop is destroyed); the "
                             "kernel nests epoll sets only so deep, which allows at most " +
                             std::to_string(kMaxChain));
    edges.reserve(edges.size() + 1);  // nothing may throw once libev has started it
  }
  detail::Access::on_destroy(loop(), forget_loop);
  detail::Access::on_destroy(inner, forget_loop);
  start_libev();
  if (known == edges.size()) edges.push_back(Edge{&loop(), &inner, 1, false});
  else ++edges[known].active;
  started_at_ = ev_iteration(raw_loop());
  guard_->start();
}

void Embed::start_libev() noexcept {
  auto* w = detail::ev_of<ev_embed>(*this);
  ev_embed_start(raw_loop(), w);
  if (w->prepare.cb != embed_prepare) {
    libev_embed_prepare = w->prepare.cb;  // the same static function for every Embed
    ev_set_cb(&w->prepare, embed_prepare);
  }
}

// A move keeps the pair of loops embedded: the circle and chain bookkeeping
// and the guard stay as they are, only libev's watcher changes address.
void Embed::rehome_stop_impl() noexcept { ev_embed_stop(raw_loop(), detail::ev_of<ev_embed>(*this)); }

void Embed::rehome_start_impl(WatcherBase&, bool active) noexcept {
  if (guard_) guard_->set_callback([this](Cleanup&, int) { stop(); });
  if (active) start_libev();
}

void Embed::stop_impl() noexcept {
  ev_embed_stop(raw_loop(), detail::ev_of<ev_embed>(*this));
  {
    std::lock_guard lock(edges_mutex);
    const Loop* outer = detail::Access::loop(*this);
    auto edge = std::find_if(edges.begin(), edges.end(),
                             [&](const Edge& e) { return e.from == outer && e.to == other_; });
    if (edge != edges.end()) {
      --edge->active;
      if (ev_iteration(raw_loop()) != started_at_) edge->lingering = true;  // see Edge
      if (edge->active == 0 && !edge->lingering) edges.erase(edge);
    }
  }
  guard_->stop();
}

}  // namespace evw
