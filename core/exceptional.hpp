// evw — the link between a watcher and its loop's exceptional-condition
// backend (EPOLLPRI). Used by Priority and Gpio; not for applications.
#pragma once

namespace evw::detail {

class PriorityTable;

/// One registration of a watcher for exceptional conditions on one fd.
/// Nodes on the same fd form a list; the fd is registered with the kernel once.
struct ExceptNode {
  int fd = -1;
  void* ev = nullptr;  // the libev watcher fed when the fd is ready
  ExceptNode* prev = nullptr;
  ExceptNode* next = nullptr;
  bool linked = false;
};

}  // namespace evw::detail
