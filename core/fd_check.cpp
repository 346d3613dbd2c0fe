#include "fd_check.hpp"

#include "loop.hpp"

namespace evw::detail {

FdCheck::FdCheck(Loop& loop, void (*on_prepare)(struct ev_loop*, ev_prepare*, int))
    : owner(&loop), loop_(loop.raw()) {
  ev_prepare_init(&prepare_, on_prepare);
  ev_set_priority(&prepare_, EV_MINPRI);  // after the user's prepare watchers
  prepare_.data = this;
  ev_fork_init(&fork_, [](struct ev_loop*, ev_fork* w, int) { static_cast<FdCheck*>(w->data)->note_all(); });
  fork_.data = this;
  ev_fork_start(loop_, &fork_);
  ev_unref(loop_);
}

FdCheck::~FdCheck() {
  if (ev_is_active(&prepare_)) {
    ev_ref(loop_);  // ev_prepare_stop counts it off again
    ev_prepare_stop(loop_, &prepare_);
  }
  ev_ref(loop_);
  ev_fork_stop(loop_, &fork_);
}

void FdCheck::note(int fd) noexcept {
  if (!fds_.empty() && fds_.back() == fd) return;  // a stop() and start() again, say
  try {
    fds_.push_back(fd);
  } catch (...) {
    return;
  }
  arm();
}

void FdCheck::note_all() noexcept {
  all_ = true;
  arm();
}

void FdCheck::arm() noexcept {
  if (!ev_is_active(&prepare_)) {
    ev_prepare_start(loop_, &prepare_);
    ev_unref(loop_);  // not a reason for run() to go on
  }
}

void FdCheck::run_now() noexcept {
  if (ev_is_active(&prepare_)) ev_invoke(loop_, &prepare_, EV_PREPARE);
}

std::vector<int>& FdCheck::take() noexcept {
  ev_ref(loop_);
  ev_prepare_stop(loop_, &prepare_);
  taken_.clear();
  taken_.swap(fds_);
  return taken_;
}

}  // namespace evw::detail
