#include "signals.hpp"

#include <signal.h>
#include <sys/eventfd.h>

#include <cerrno>
#include <mutex>
#include <stdexcept>
#include <cstring>
#include <string>

#include "access.hpp"
#include "sys.hpp"

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

bool sole_claim(int signum, const Loop& loop) noexcept {
  std::lock_guard lock(table_mutex);
  const Slot& slot = table[signum];
  return slot.owner == &loop && slot.refs == 1;
}

void probe_wakeup_fd(const char* kind) {
  const int fd = sys::retry_eintr([] { return sys::eventfd(0, EFD_CLOEXEC); });
  if (const int err = errno; fd < 0)
    throw_system(err, std::string("evw::") + kind +
                            ": cannot create the loop's wakeup descriptor (eventfd)");
  sys::close(fd);
}

}  // namespace evw::detail
