#include "loop_thread.hpp"

#include <stdexcept>
#include <stop_token>

namespace evw {

LoopThread::LoopThread(unsigned flags)
    : loop_(std::make_unique<Loop>(flags)),
      handle_(loop_->handle()),
      thread_([this](std::stop_token token) { body(std::move(token)); }) {}

LoopThread::~LoopThread() {
  stop();
  if (thread_.joinable()) thread_.join();
}

Loop& LoopThread::loop() const {
  if (!loop_) throw std::logic_error("evw::LoopThread::loop: the thread has ended and destroyed its loop");
  return *loop_;
}

void LoopThread::stop() noexcept { thread_.request_stop(); }

void LoopThread::join() {
  if (thread_.joinable()) thread_.join();
  if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
}

void LoopThread::body(std::stop_token token) {
  Loop& loop = *loop_;
  // What an active watcher holds: run() waits for posts with nothing else
  // active, until the stop request lets go.
  detail::LoopHold hold(handle_);
  {
    // Runs on the thread that asks to stop (or here, if that was before).
    std::stop_callback on_stop(token, [this, &loop, &hold] {
      handle_.post([&loop, &hold] {
        hold.reset();
        loop.stop(Break::All);
      });
    });
    try {
      loop.run();
    } catch (...) {
      error_ = std::current_exception();
    }
  }  // no stop callback runs past here (~stop_callback waits for one running)
  hold.reset();
  // On the loop's own thread: its callbacks (Cleanup) and the destruction of
  // queued posts happen where the loop ran. The stop post, if still queued,
  // goes with it, before `hold` does.
  loop_.reset();
}

}  // namespace evw
