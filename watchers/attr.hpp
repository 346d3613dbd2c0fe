// evw::Attr — a sysfs/kernfs attribute that notifies its changes
// (the kernel calls sysfs_notify()/kernfs_notify() on it), read as text.
//
// Such files raise POLLPRI|POLLERR when they change: cgroup v2's
// cgroup.events, memory.events and pids.events, a sysfs GPIO `value`, md's
// sync_action, power_supply and thermal attributes of some drivers, ...
// The constructor opens the file and does the priming read; start() watches
// it with the loop's EPOLLPRI backend (the one evw::Priority uses). At each
// event the watcher reads the file again from offset 0 (lseek + read) before
// calling back, so value() is the new text and the condition is cleared.
//
// Caveats:
// - The kernel says *that* the attribute changed, not how often: changes
//   faster than the loop reads coalesce into one callback, and value() is the
//   text at the time of the read (possibly the same as before: a change and
//   its undoing between two reads).
// - A change that comes while the watcher is stopped stays latched in the
//   open file and is reported (once) after the next start().
// - Only attributes that call sysfs_notify/kernfs_notify ever fire; most
//   sysfs files never do (the watcher then just never calls back). Regular
//   files on disk are refused by epoll (start() throws EPERM). Not for files
//   whose poll() clears the condition (/proc/self/mountinfo, PSI triggers):
//   their events are lost in the shared EPOLLPRI set; use Mounts and Pressure.
// - value() is the file's text without its trailing newline(s), as libudev
//   gives sysfs attributes. Files larger than 1 MiB are refused (EFBIG).
//   The file is read until a read returns less than asked (an attribute
//   comes whole; a read more at its end could take a change unseen, see
//   AttrFile::End): tables that come in pieces (mountinfo) are not for Attr.
// - If the file goes away (its device or cgroup is removed), kernfs wakes
//   nobody: no event comes. The next read (an event fed with feed(), or
//   set()) fails: the watcher stops itself and calls back once with
//   Event::Error; error() says why (ENODEV).
//
// revents: Event::Pri when the attribute changed (value() is the new text);
// Event::Error once when the file can no longer be read (the watcher has
// stopped itself; error() says why). kernfs raises no EPOLLHUP. Plus
// whatever feed() passes (a fed event rereads the file too).
#pragma once

#include <cstddef>
#include <string>
#include <system_error>
#include <utility>

#include "../core/exceptional.hpp"
#include "../core/loop.hpp"
#include "../core/watcher.hpp"

namespace evw {

namespace detail {

template <class W>
class EdgeAwaitable;  // defined in <evw/coro/edge.hpp>

/// An open kernel file that notifies its changes with POLLPRI (a sysfs or
/// kernfs attribute, /proc/self/mountinfo, a PSI file): owns the descriptor
/// and rereads the file from offset 0. The logic every such watcher shares:
/// Attr, CgroupEvents, Gpio (its sysfs `value`), Mounts and Pressure use it.
class AttrFile {
 public:
  /// The largest text reread() accepts by default.
  static constexpr std::size_t default_max = std::size_t{1} << 20;

  /// Where reread() knows the text is whole.
  enum class End {
    /// At a read that returns 0: procfs and seq_file tables (mountinfo) come
    /// in pieces.
    Eof,
    /// At a read that returns less than it was asked for: a sysfs/kernfs
    /// attribute comes whole. One more read would be harmful: a preallocated
    /// sysfs attribute (a GPIO `value`) marks the file's last change seen at
    /// every read, also at one at EOF that returns nothing, so a change that
    /// came between the two reads would be taken without being shown.
    ShortRead,
  };

  AttrFile() noexcept = default;
  AttrFile(AttrFile&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  AttrFile& operator=(AttrFile&& other) noexcept {
    if (this != &other) reset(std::exchange(other.fd_, -1));
    return *this;
  }
  AttrFile(const AttrFile&) = delete;
  AttrFile& operator=(const AttrFile&) = delete;
  ~AttrFile() { reset(); }

  /// open(2) path with flags | O_NONBLOCK | O_CLOEXEC (EINTR retried),
  /// closing what was open before. @return 0, or the errno of open.
  int open(const std::string& path, int flags) noexcept;
  /// lseek(0) + read to the end into text (the priming read, and the read
  /// that clears a sysfs/kernfs condition: kernfs remembers per open file
  /// which change it last showed). EINTR retried.
  /// @return 0; or an errno, and *op names the call that failed ("lseek",
  ///         "read"; EFBIG from "read" when the text exceeds max, ENOMEM
  ///         when it cannot be stored).
  int reread(std::string& text, const char** op, std::size_t max = default_max,
             End end = End::Eof) const noexcept;
  /// Whether a condition waits that nobody has read yet (poll(POLLPRI), no wait).
  /// @return 1 or 0, or -errno if poll failed.
  int condition_waiting() const noexcept;
  int fd() const noexcept { return fd_; }
  /// Close the file (if open) and own fd instead.
  void reset(int fd = -1) noexcept;

 private:
  int fd_ = -1;
};

/// A private epoll set holding one file whose poll() itself clears the
/// condition it reports: a PSI trigger (psi_trigger_poll takes the event) and
/// /proc/<pid>/mountinfo (mounts_poll records the change as seen). Such a file
/// cannot share the loop's EPOLLPRI set: the kernel polls a nested set's
/// files when libev's epoll checks the set (and when it adds it), the first
/// poll takes the condition, and the set's own epoll_wait then finds nothing
/// (every mount was lost that way). Here the file is alone and registered
/// edge-triggered for EPOLLIN|EPOLLPRI: it is queued in the set by the
/// kernel's wakeup (which only a change makes) and stays queued, whoever
/// polls it, until forget_ready() takes it out. So the set is readable from
/// a change until the watcher has handled it: nothing is lost to libev's
/// lazy registration, to a stopped watcher, or to a check that found it.
class OwnEpoll {
 public:
  OwnEpoll() noexcept = default;
  OwnEpoll(OwnEpoll&& other) noexcept : epfd_(std::exchange(other.epfd_, -1)) {}
  OwnEpoll& operator=(OwnEpoll&& other) noexcept {
    if (this != &other) reset(std::exchange(other.epfd_, -1));
    return *this;
  }
  OwnEpoll(const OwnEpoll&) = delete;
  OwnEpoll& operator=(const OwnEpoll&) = delete;
  ~OwnEpoll() { reset(); }

  /// A new set with fd in it, replacing the old one; not readable until fd's
  /// next wakeup. @return 0, or an errno and *op the call that failed.
  int watch(int fd, const char** op) noexcept;
  /// Takes the file out of the set's ready list (epoll_wait, no wait): the set
  /// is readable again at the next change. @return 0 or an errno.
  int forget_ready() const noexcept;
  int fd() const noexcept { return epfd_; }
  void reset(int epfd = -1) noexcept;

 private:
  int epfd_ = -1;
};

/// text without its trailing newlines.
void strip_newlines(std::string& text) noexcept;
/// Opens path into file and does the priming read into text (an attribute:
/// AttrFile::End::ShortRead).
/// @throws std::system_error "evw::<kind>: <call> <path>: <strerror>".
void open_attr(AttrFile& file, const std::string& path, int flags, std::string& text, const char* kind);
[[noreturn]] void throw_file_error(const char* kind, const char* op, const std::string& path, int err);

struct AttrTrampoline;

}  // namespace detail

/// Calls back when a sysfs/kernfs attribute changes: revents Event::Pri, with
/// value() already holding the new text; Event::Error once if the file can no
/// longer be read (the watcher has then stopped itself; error() says why).
class Attr final : public detail::ExceptWatcher<Attr> {
 public:
  /// @brief Opens path (O_RDONLY) and reads it once (the priming read: a
  ///        sysfs/kernfs file that was never read reports a change at once).
  ///        The watcher is stopped.
  /// @throws std::invalid_argument if path is empty or cb is empty;
  ///         std::system_error with the kernel's errno and a message naming
  ///         the call and the file, e.g. "evw::Attr: open
  ///         /sys/fs/cgroup/x/cgroup.events: No such file or directory".
  Attr(Loop& loop, std::string path, Callback cb);
  ~Attr();
  /// @brief Move: this watcher continues where `other` was (loop, callback,
  /// data, priority, file, active state; a pending event is delivered once,
  /// from here); `other` is left stopped and empty. The open file goes along
  /// (nothing is closed or reopened: a latched change stays latched).
  /// @throws std::logic_error from inside other's own callback, or if either
  ///         watcher is loop-owned; nothing changes then.
  Attr(Attr&& other);
  Attr& operator=(Attr&& other) { return move_assign(other); }

  /// @brief Watch another file; allowed while active or pending (restarts,
  ///        keeps a pending event). The new file is opened and read first:
  ///        if that throws, the watcher keeps its old file.
  /// @throws as the constructor.
  void set(std::string path);

  /// @brief In a coroutine: `int revents = co_await attr.next();` waits for
  ///        the next event, after this watcher's own callback has run for it
  ///        (a stopped watcher is started for the wait and stopped after).
  ///        Needs <evw/coro/coro.hpp>; see coro/edge.hpp.
  template <class Self = Attr>
  [[nodiscard]] detail::EdgeAwaitable<Self> next() noexcept {
    return detail::EdgeAwaitable<Self>(static_cast<Self&>(*this));
  }
  template <class>
  friend class detail::EdgeAwaitable;

  /// The file watched.
  const std::string& path() const noexcept { return path_; }
  /// The file's text at the last read, without its trailing newlines.
  const std::string& value() const noexcept { return value_; }
  /// Why the watcher stopped itself with Event::Error, else empty; cleared by start().
  std::error_code error() const noexcept { return error_; }
  /// The open file (owned by the watcher).
  int fd() const noexcept { return file_.fd(); }

 private:
  friend struct detail::AttrTrampoline;
  // start() @throws std::system_error (EPERM for a regular file, EMFILE for the loop's queue).
  void start_impl() override;
  void on_condition(int revents) noexcept;

  detail::EvStorage<32> ev_;  // never started in libev: the loop's EPOLLPRI table drives it
  detail::AttrFile file_;
  std::string path_;
  std::string value_;
  std::string scratch_;  // the text being read, swapped into value_ when complete
  std::error_code error_;
};

}  // namespace evw
