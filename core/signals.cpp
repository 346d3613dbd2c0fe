#include "signals.hpp"

#include <signal.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <mutex>
#include <stdexcept>
#include <cstring>
#include <string>

#include "access.hpp"

namespace evw::detail {
namespace {

struct Slot {
  const Loop* owner = nullptr;
  unsigned refs = 0;
  struct sigaction saved {};
};

std::mutex table_mutex;
Slot table[NSIG];

}  // namespace

void claim_signal(int signum, const Loop& loop, const char* kind) {
  std::lock_guard lock(table_mutex);
  Slot& slot = table[signum];
  if (slot.owner != nullptr && slot.owner != &loop)
    throw std::logic_error(std::string("evw::") + kind + ": signal " + std::to_string(signum) +
                           " (" + ::strsignal(signum) +
                           ") is already watched by another loop; a signal belongs to one loop");
  if (slot.refs++ == 0) {
    slot.owner = &loop;
    ::sigaction(signum, nullptr, &slot.saved);
  }
}

void release_signal(int signum, const Loop& loop) noexcept {
  std::lock_guard lock(table_mutex);
  Slot& slot = table[signum];
  if (slot.owner != &loop || slot.refs == 0) return;
  if (--slot.refs == 0) {
    slot.owner = nullptr;
    ::sigaction(signum, &slot.saved, nullptr);
  }
}

void probe_wakeup_fd(const char* kind) {
  int fd = ::eventfd(0, EFD_CLOEXEC);
  if (fd < 0)
    throw_system(errno, std::string("evw::") + kind +
                            ": no descriptor left for the loop's wakeup (eventfd)");
  ::close(fd);
}

}  // namespace evw::detail
