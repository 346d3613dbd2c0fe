// Internal (not installed): descriptors to look at before libev hands them to
// the kernel.
//
// libev applies ev_io changes at the start of the next iteration (fd_reify),
// and its epoll backend asserts — aborts the process — when epoll_ctl says
// EBADF there: an fd closed after io.start() but before the loop ran, or
// closed under two watchers of which one then stops (the other is modified).
// So Io notes the fd of every start and stop here, and an internal prepare
// watcher (prepare watchers run just before fd_reify) checks the noted fds
// once per iteration. A closed one is handled as libev handles an fd that
// fails later on (fd_kill): its Io watchers stop and get EV_ERROR. The
// prepare runs only in iterations after such a change, and never keeps run()
// from returning.
#pragma once

#include <ev.h>

#include <utility>
#include <vector>

namespace evw {
class Loop;
}

namespace evw::detail {

struct FdCheck {
  /// on_prepare: what to do with the noted fds (Io's, in io.cpp).
  FdCheck(Loop& owner, void (*on_prepare)(struct ev_loop*, ev_prepare*, int));
  ~FdCheck();
  FdCheck(const FdCheck&) = delete;
  FdCheck& operator=(const FdCheck&) = delete;

  /// Look at fd before the next fd_reify. Out of memory: not looked at.
  void note(int fd) noexcept;
  /// Look at every watched fd: after a fork, libev registers them all again
  /// in a new epoll (a child often closes inherited descriptors). Called by
  /// an internal fork watcher, so Loop::fork() and LoopFlag::ForkCheck both work.
  void note_all() noexcept;
  /// The noted fds, for on_prepare: they are cleared and the prepare stopped.
  std::vector<int>& take() noexcept;
  /// Whether note_all() was called since the last check (cleared by this).
  bool take_all() noexcept { return std::exchange(all_, false); }
  /// Check the noted fds now (on_prepare), if any: for libev's Embed, which
  /// applies this loop's fd changes from the embedding loop, before this
  /// loop's prepare watchers could run.
  void run_now() noexcept;

  Loop* owner;

 private:
  struct ev_loop* loop_;
  ev_prepare prepare_;
  ev_fork fork_;  // runs before the prepare in a forked child's first iteration
  std::vector<int> fds_;
  std::vector<int> taken_;
  bool all_ = false;
  void arm() noexcept;
};

}  // namespace evw::detail
