#include "priority_table.hpp"

#include <cerrno>
#include <string>
#include <system_error>

#include "access.hpp"

namespace evw::detail {

PriorityTable& Access::make_priority_table(Loop& loop) {
  if (!loop.priority_) loop.priority_ = std::make_unique<PriorityTable>(loop.raw());
  return *loop.priority_;
}

PriorityTable::PriorityTable(struct ev_loop* loop) : loop_(loop), backend_(make_except_backend()) {
  ev_io_init(&io_, on_ready, backend_->pollable_fd(), EV_READ);
  // At EV_MAXPRI the drain runs before any user callback of the iteration,
  // so a fed high-priority event still overtakes a pending low-priority one.
  ev_set_priority(&io_, EV_MAXPRI);
  io_.data = this;
}

PriorityTable::~PriorityTable() { ev_io_stop(loop_, &io_); }

void PriorityTable::add(ExceptNode& node) {
  const int fd = node.fd;
  if (static_cast<std::size_t>(fd) >= heads_.size()) heads_.resize(fd + 1, nullptr);
  if (heads_[fd] == nullptr) backend_->add(fd);
  else backend_->modify(fd);
  node.prev = nullptr;
  node.next = heads_[fd];
  if (node.next != nullptr) node.next->prev = &node;
  heads_[fd] = &node;
  node.linked = true;
  if (nodes_++ == 0) ev_io_start(loop_, &io_);
}

void PriorityTable::remove(ExceptNode& node) noexcept {
  if (!node.linked) return;
  if (node.prev != nullptr) node.prev->next = node.next;
  else heads_[node.fd] = node.next;
  if (node.next != nullptr) node.next->prev = node.prev;
  node.prev = node.next = nullptr;
  node.linked = false;
  if (heads_[node.fd] == nullptr) backend_->remove(node.fd);
  if (--nodes_ == 0) ev_io_stop(loop_, &io_);
}

void PriorityTable::on_ready(struct ev_loop* loop, ev_io* io, int) noexcept {
  auto* self = static_cast<PriorityTable*>(io->data);
  constexpr int kBatch = 64;  // more stay ready and come next iteration
  ReadyFd ready[kBatch];
  const int n = self->backend_->drain(ready, kBatch);
  for (int i = 0; i < n; ++i) {
    const auto fd = static_cast<std::size_t>(ready[i].fd);
    if (fd >= self->heads_.size()) continue;
    for (ExceptNode* node = self->heads_[fd]; node != nullptr; node = node->next)
      ev_feed_event(loop, node->ev, ready[i].revents);
  }
}

void PriorityTable::after_fork() {
  // The inherited queue is shared with the parent: build a private one.
  auto fresh = make_except_backend();  // if this throws, nothing changed
  int failed_fd = -1, failed_errno = 0;
  for (std::size_t fd = 0; fd < heads_.size(); ++fd) {
    if (heads_[fd] == nullptr) continue;
    try {
      fresh->add(static_cast<int>(fd));
    } catch (const std::system_error& e) {
      if (failed_fd < 0) failed_fd = static_cast<int>(fd), failed_errno = e.code().value();
    }
  }
  ev_io_stop(loop_, &io_);
  backend_ = std::move(fresh);
  ev_io_set(&io_, backend_->pollable_fd(), EV_READ);
  if (nodes_ != 0) ev_io_start(loop_, &io_);
  if (failed_fd >= 0)
    throw_system(failed_errno, "evw::Loop::fork: cannot watch fd " + std::to_string(failed_fd) +
                                   " for EPOLLPRI again in the child");
}

}  // namespace evw::detail
