// evw::Mounts — the mount table changed: something was mounted, unmounted,
// remounted or moved, in this process's mount namespace (or another one's,
// through /proc/<pid>/mountinfo).
//
// Linux raises POLLPRI|POLLERR on /proc/self/mountinfo at every change of
// the namespace's mount table. Its poll() takes the change it reports, so the
// file cannot share the loop's EPOLLPRI set (the change is lost there, see
// detail::OwnEpoll): each Mounts has an epoll set of its own (one more
// descriptor) that libev watches directly. The watcher keeps the table (parsed from
// mountinfo, octal escapes such as \040 for a space decoded) and, at each
// event, reads it again and works out what changed: changes() lists the
// mounts added, removed and changed (same mount id and filesystem, another
// line: remounted with other options, moved), table() is the new table.
//
// Caveats:
// - A propagation change alone (mount --make-shared, --make-private, ...)
//   raises no event: the kernel does not count it as a change. It shows in the
//   difference of the next event.
// - Changes coalesce: all that happened between two reads is one callback,
//   and a mount that came and went in between is not seen at all (changes()
//   may then be empty). A mount table is a snapshot, not a log.
// - Each event reads and parses the whole table: O(mounts). With thousands
//   of mounts and a busy namespace (containers starting) that is real work.
// - Changes while the watcher is stopped are reported, once and as one
//   difference, after the next start() (the table kept is the last one read).
// - Another namespace: pass /proc/<pid>/mountinfo. The file is opened by the
//   constructor (and set()): it watches the namespace the process was in at
//   that moment, and keeps that namespace readable after the process exits.
// - The mount options (options, super_options) are kept as the kernel wrote
//   them, escapes included, so that splitting them at ',' stays safe.
//
// revents: Event::Pri when the table changed (changes() says how, table() is
// the new table); Event::Error once when mountinfo can no longer be read (the
// watcher has stopped itself; error() says why). procfs raises no EPOLLHUP.
// Plus whatever feed() passes (a fed event rereads the table too).
#pragma once

#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "../core/loop.hpp"
#include "../core/watcher.hpp"
#include "attr.hpp"

namespace evw {

/// One line of mountinfo (proc(5)): one mount.
struct MountEntry {
  int id = 0;                   ///< unique per mount (reused after it is gone)
  int parent_id = 0;            ///< the mount it is mounted on
  unsigned major = 0, minor = 0;  ///< st_dev of the filesystem
  std::string root;             ///< the directory of the filesystem that is mounted (a bind mount's subtree)
  std::string mount_point;      ///< where, relative to the process's root
  std::string options;          ///< per-mount options, "rw,relatime" (kept escaped)
  std::string propagation;      ///< the optional fields, "shared:1 master:2"; "" for private
  std::string fstype;           ///< "tmpfs", "ext4", "fuse.sshfs"
  std::string source;           ///< "/dev/sda1", "tmpfs", "none"
  std::string super_options;    ///< per-superblock options (kept escaped)
  bool operator==(const MountEntry&) const = default;
};

/// How the table changed between two reads.
struct MountChange {
  enum class Kind {
    Added,    ///< a new mount (mount, bind mount, a move's new side is Changed)
    Removed,  ///< unmounted
    Changed,  ///< the same mount, another line: remounted, moved (propagation changed meanwhile)
  };
  Kind kind = Kind::Added;
  MountEntry entry;     ///< the mount as it is now (Removed: as it was)
  MountEntry previous;  ///< Changed: the mount as it was before; else empty
};

namespace detail {
struct MountsTrampoline;
}

/// Calls back when the mount table changes: revents Event::Pri with
/// changes() and table() up to date; Event::Error once if mountinfo can no
/// longer be read (the watcher has then stopped itself; error() says why).
class Mounts final : public detail::Watcher<Mounts> {
 public:
  /// @brief Watches this process's mount namespace (/proc/self/mountinfo).
  ///        Reads the table at once; the watcher is stopped.
  /// @throws std::invalid_argument if cb is empty; std::system_error naming
  ///         the call and the file.
  explicit Mounts(Loop& loop, Callback cb) : Mounts(loop, "/proc/self/mountinfo", std::move(cb)) {}
  /// @brief Watches the mountinfo file at path, e.g. /proc/1234/mountinfo
  ///        for the mount namespace of process 1234.
  /// @throws as above; std::invalid_argument if path is empty.
  Mounts(Loop& loop, std::string path, Callback cb);
  ~Mounts();
  /// @brief Move: this watcher continues where `other` was (loop, callback,
  /// data, priority, table and changes, active state; a pending event is delivered once,
  /// from here); `other` is left stopped and empty. The open file and
  /// its epoll set go along: a change not yet read is reported from here.
  /// @throws std::logic_error from inside other's own callback, or if either
  ///         watcher is loop-owned; nothing changes then.
  Mounts(Mounts&& other);
  Mounts& operator=(Mounts&& other) { return move_assign(other); }

  /// @brief Watch another mountinfo file; allowed while active or pending
  ///        (restarts, keeps a pending event). table() becomes the new file's
  ///        table and changes() is emptied. @throws as the constructor; then
  ///        the watcher keeps its old file.
  void set(std::string path);

  /// @brief In a coroutine: `co_await mounts.next()` waits for the next
  ///        change, after this watcher's callback. Needs <evw/coro/coro.hpp>.
  template <class Self = Mounts>
  [[nodiscard]] detail::EdgeAwaitable<Self> next() noexcept {
    return detail::EdgeAwaitable<Self>(static_cast<Self&>(*this));
  }
  template <class>
  friend class detail::EdgeAwaitable;

  /// The mounts at the last read, in mountinfo's order (parents first).
  const std::vector<MountEntry>& table() const noexcept { return table_; }
  /// What the last event changed: removals first, then additions, then
  /// changed mounts, each in table order. Empty before the first event.
  const std::vector<MountChange>& changes() const noexcept { return changes_; }
  /// The mount that is visible at mount_point (the last one mounted there), or nullptr.
  const MountEntry* find(std::string_view mount_point) const noexcept;
  /// The mountinfo file watched.
  const std::string& path() const noexcept { return path_; }
  /// Why the watcher stopped itself with Event::Error, else empty; cleared by start().
  std::error_code error() const noexcept { return error_; }
  /// The open mountinfo file (owned by the watcher; its own epoll set is another descriptor).
  int fd() const noexcept { return file_.fd(); }

  /// @brief Parses mountinfo text (proc(5)); lines that do not parse are skipped.
  /// @throws std::bad_alloc.
  static std::vector<MountEntry> parse(std::string_view mountinfo);
  /// @brief The differences from `before` to `after` (by mount id), as changes() lists them.
  /// @throws std::bad_alloc.
  static std::vector<MountChange> diff(const std::vector<MountEntry>& before,
                                       const std::vector<MountEntry>& after);

 private:
  friend struct detail::MountsTrampoline;
  // start() throws nothing: the descriptors exist since the constructor.
  void start_impl() override;
  void stop_impl() noexcept override;
  bool active_impl() const noexcept override;
  int take_pending() noexcept override;
  bool pending_impl() const noexcept override;
  void on_condition(int revents) noexcept;

  detail::EvStorage<32> ev_;  // fed, never started: delivery, feed() and pending state
  detail::EvStorage<48> io_;  // EV_READ on own_
  detail::AttrFile file_;
  detail::OwnEpoll own_;      // mountinfo's own epoll set (see detail::OwnEpoll)
  std::string path_;
  std::string text_;
  std::vector<MountEntry> table_;
  std::vector<MountChange> changes_;
  std::error_code error_;
};

}  // namespace evw
