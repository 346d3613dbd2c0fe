// Internal (not installed): a Loop's watchers of exceptional conditions.
//
// One backend per loop, created with the first Priority/Gpio watcher. Its
// pollable fd is watched by an internal ev_io at EV_MAXPRI, started for the
// table's lifetime and counted as active only while a node is registered (so
// run() still returns when nothing else is left). When it fires, the ready
// fds are drained and their watchers are delivered in priority order (see
// on_ready for the two ways).
#pragma once

#include <ev.h>

#include <memory>
#include <vector>

#include "backend.hpp"
#include "exceptional.hpp"

namespace evw::detail {

class PriorityTable {
 public:
  explicit PriorityTable(Loop& owner);
  ~PriorityTable();
  PriorityTable(const PriorityTable&) = delete;
  PriorityTable& operator=(const PriorityTable&) = delete;

  /// Register node (node.fd, node.ev set). @throws std::system_error.
  void add(ExceptNode& node);
  void remove(ExceptNode& node) noexcept;
  /// In a forked child: a new kernel queue, every fd registered again.
  void after_fork();
  std::size_t size() const noexcept { return nodes_; }
  /// Something was fed into libev's queue from outside its dispatch.
  void note_feed() noexcept { ++feeds_; }

 private:
  static constexpr int kBatch = 64;  // ready fds per drain; more come next iteration
  // Watchers about to be called directly by one on_ready; entries are nulled
  // when their watcher stops, so a callback may stop or destroy any of them.
  struct Batch {
    ExceptNode* nodes[kBatch];
    int count = 0;
    Batch* outer = nullptr;  // an on_ready further up the stack (a nested run())
  };
  static void on_ready(struct ev_loop* loop, ev_io* io, int revents) noexcept;
  void spill(Batch& batch) noexcept;
  bool feed_fd(const ReadyFd& ready) noexcept;  // false: a stale event
  void drop_stale() noexcept;
  void drain_failed(int err) noexcept;
  bool is_live(const ReadyFd& ready) const noexcept {
    const auto fd = static_cast<std::size_t>(ready.fd);
    return fd < heads_.size() && heads_[fd] != nullptr && tags_[fd] == ready.tag;
  }

  Loop& owner_;
  struct ev_loop* loop_;
  std::unique_ptr<ExceptBackend> backend_;
  ev_io io_;
  std::vector<ExceptNode*> heads_;  // indexed by fd
  std::vector<unsigned> tags_;      // indexed by fd: bumped at every registration
  bool rebuild(int* failed_fd, int* failed_errno);
  std::size_t nodes_ = 0;
  Batch* batch_ = nullptr;
  unsigned feeds_ = 0;  // see note_feed
};

}  // namespace evw::detail
