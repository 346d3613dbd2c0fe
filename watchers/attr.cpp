#include "attr.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <cerrno>
#include <new>
#include <string>

#include "../core/access.hpp"
#include "../core/sys.hpp"
#include "../coro/edge.hpp"

namespace evw {

static_assert(sizeof(detail::EvStorage<32>) >= sizeof(ev_watcher));

namespace detail {

int AttrFile::open(const std::string& path, int flags) noexcept {
  const int fd = sys::retry_eintr(
      [&] { return sys::open(path.c_str(), flags | O_NONBLOCK | O_CLOEXEC); });
  if (fd < 0) return errno;
  reset(fd);
  return 0;
}

void AttrFile::reset(int fd) noexcept {
  if (fd_ >= 0) sys::close(fd_);
  fd_ = fd;
}

int AttrFile::reread(std::string& text, const char** op, std::size_t max, End end) const noexcept {
  *op = "lseek";
  if (sys::retry_eintr([&] { return sys::lseek(fd_, 0, SEEK_SET); }) < 0) return errno;
  *op = "read";
  // sysfs hands out a whole attribute (at most a page) in the first read;
  // seq_file-based files (kernfs, procfs) may take several.
  std::size_t used = 0;
  try {
    if (text.capacity() < 256) text.reserve(256);
    for (;;) {
      if (text.capacity() - used < 128) text.reserve(text.capacity() * 2);
      text.resize(text.capacity());
      const std::size_t room = text.size() - used;
      const ssize_t n = sys::retry_eintr([&] { return sys::read(fd_, text.data() + used, room); });
      if (n < 0) {
        const int err = errno;
        text.resize(used);
        return err;
      }
      if (n == 0) break;
      used += static_cast<std::size_t>(n);
      if (used > max) {
        text.resize(used);
        return EFBIG;
      }
      if (end == End::ShortRead && static_cast<std::size_t>(n) < room) break;
    }
  } catch (const std::bad_alloc&) {
    text.resize(used <= text.size() ? used : 0);
    return ENOMEM;
  }
  text.resize(used);
  return 0;
}

int AttrFile::condition_waiting() const noexcept {
  pollfd p{fd_, POLLPRI, 0};
  const int n = sys::retry_eintr([&] { return sys::poll(&p, 1, 0); });
  if (n < 0) return -errno;
  return n == 1 && (p.revents & POLLPRI) != 0 ? 1 : 0;
}

int OwnEpoll::watch(int fd, const char** op) noexcept {
  *op = "epoll_create1";
  const int epfd = sys::retry_eintr([] { return sys::epoll_create1(EPOLL_CLOEXEC); });
  if (epfd < 0) return errno;
  // EPOLLIN is always there for these files: with EPOLLET it keeps the file
  // queued after any poll, until epoll_wait here reports it (see the header).
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLPRI | EPOLLET;
  ev.data.fd = fd;
  *op = "epoll_ctl";
  int err = 0;
  if (sys::retry_eintr([&] { return sys::epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev); }) != 0) {
    err = errno;
  } else {
    // Adding found EPOLLIN: the file is queued once without a change.
    *op = "epoll_wait";
    epoll_event ready;
    if (sys::retry_eintr([&] { return sys::epoll_wait(epfd, &ready, 1, 0); }) < 0) err = errno;
  }
  if (err != 0) {
    sys::close(epfd);
    return err;
  }
  reset(epfd);
  return 0;
}

int OwnEpoll::forget_ready() const noexcept {
  epoll_event ev;
  return sys::retry_eintr([&] { return sys::epoll_wait(epfd_, &ev, 1, 0); }) < 0 ? errno : 0;
}

void OwnEpoll::reset(int epfd) noexcept {
  if (epfd_ >= 0) sys::close(epfd_);
  epfd_ = epfd;
}

void strip_newlines(std::string& text) noexcept {
  std::size_t n = text.size();
  while (n > 0 && text[n - 1] == '\n') --n;
  text.resize(n);
}

void throw_file_error(const char* kind, const char* op, const std::string& path, int err) {
  throw_system(err, std::string("evw::") + kind + ": " + op + " " + path);
}

void open_attr(AttrFile& file, const std::string& path, int flags, std::string& text, const char* kind) {
  AttrFile fresh;
  if (const int err = fresh.open(path, flags); err != 0) throw_file_error(kind, "open", path, err);
  const char* op;
  if (const int err = fresh.reread(text, &op, AttrFile::default_max, AttrFile::End::ShortRead); err != 0)
    throw_file_error(kind, op, path, err);
  file = std::move(fresh);
}

struct AttrTrampoline {
  static void on_event(struct ev_loop*, ev_watcher* w, int revents) noexcept {
    static_cast<Attr*>(w->data)->on_condition(revents);
  }
  static void direct(int revents, void* self) { static_cast<Attr*>(self)->on_condition(revents); }
};

}  // namespace detail

Attr::Attr(Loop& loop, std::string path, Callback cb)
    : ExceptWatcher(loop, &ev_, "Attr", std::move(cb)) {
  if (path.empty()) detail::throw_invalid("Attr", "path", "is empty");
  node_.set_ev(&ev_);
  node_.self = this;
  node_.call = detail::AttrTrampoline::direct;
  ev_set_cb(detail::ev_of<ev_watcher>(*this), detail::AttrTrampoline::on_event);
  // The priming read: a sysfs/kernfs file that was never read reports a
  // change at once (kernfs compares the file's last shown event count).
  detail::open_attr(file_, path, O_RDONLY, value_, "Attr");
  detail::strip_newlines(value_);
  node_.fd = file_.fd();
  path_ = std::move(path);
}

Attr::~Attr() { stop(); }

// The file goes along: other is left with none, so its destructor closes nothing.
Attr::Attr(Attr&& other)
    : ExceptWatcher(std::move(other), &ev_),
      file_(std::move(other.file_)),
      path_(std::move(other.path_)),
      value_(std::move(other.value_)),
      scratch_(std::move(other.scratch_)),
      error_(other.error_) {
  finish_move(other, sizeof ev_);
  detail::EdgeHook<Attr>::moved(other, *this);  // a coroutine awaiting next() follows
}

void Attr::set(std::string path) {
  if (path.empty()) detail::throw_invalid("Attr", "path", "is empty");
  detail::AttrFile fresh;
  std::string text;
  detail::open_attr(fresh, path, O_RDONLY, text, "Attr");  // the old file keeps working if this throws
  detail::strip_newlines(text);
  Frozen frozen = freeze();
  file_ = std::move(fresh);
  node_.fd = file_.fd();
  value_ = std::move(text);
  path_ = std::move(path);
  error_.clear();
  thaw(frozen);
}

void Attr::start_impl() {
  ExceptWatcher::start_impl();
  error_.clear();  // it said why the watcher had stopped itself
}

void Attr::on_condition(int revents) noexcept {
  // After a callback threw, the event is deferred untouched; it is read when
  // run() feeds it back (the latched change cannot be delivered twice).
  if (detail::Access::failed(*detail::Access::loop(*this))) {
    detail::dispatch(*this, revents);
    return;
  }
  // Read before calling back: it clears the condition (else epoll reports it
  // again at once) and lets the callback see the new text.
  const char* op;
  if (const int err = file_.reread(scratch_, &op, detail::AttrFile::default_max, detail::AttrFile::End::ShortRead);
      err != 0) {
    error_ = std::error_code(err, std::generic_category());
    stop();  // a gone file stays "ready" forever: do not spin on it
    detail::dispatch(*this, Event::Error);
    return;
  }
  detail::strip_newlines(scratch_);
  value_.swap(scratch_);
  detail::dispatch(*this, revents);  // may destroy *this: touch nothing after
}

}  // namespace evw
