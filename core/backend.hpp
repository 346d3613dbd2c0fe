// Internal (not installed): the exceptional-condition backend.
//
// libev's backends register only EPOLLIN/EPOLLOUT, so exceptional conditions
// (EPOLLPRI) go through a second, private kernel queue whose own descriptor is
// pollable and watched by the loop. The table (priority_table.cpp) is all
// that sees it; watchers never do. Each OS supplies one class named
// ExceptBackend with these members, chosen at compile time so that drain()
// inlines into the table's dispatch (the hot path):
//
//   ExceptBackend()                  a new queue; throws std::system_error
//   int  pollable_fd() const         readable while any registered fd has a condition
//   void add(int fd, unsigned tag)   register fd; its events come back with tag;
//                                    throws std::system_error (EPERM, EBADF, ...)
//   void modify(int fd, unsigned tag)  re-register with a new tag, adding again
//                                    if the kernel dropped fd; throws as add
//   void remove(int fd) noexcept     unregister; a closed fd is not an error; if
//                                    the kernel refuses, the registration stays:
//                                    its events come back with a tag the table
//                                    no longer expects, and a later add() takes
//                                    it over
//   using Ready = ...                one ready registration as the kernel reports it
//   int drain(Ready* out, int max) noexcept
//                                    up to max ready registrations, without blocking
//                                    (EINTR retried); -errno if the queue cannot be
//                                    read (the conditions stay queued)
//   static int fd_of(const Ready&), unsigned tag_of(const Ready&),
//          int revents_of(const Ready&)   (evw bits: Event::Pri, Event::Error, Event::Hup)
//
// backend_epoll.hpp is Linux's; a kqueue EVFILT_EXCEPT backend or a
// poll()-thread fallback would be another header selected here.
#pragma once

#if defined(__linux__)
#include "backend_epoll.hpp"
#else
#error "evw: no exceptional-condition backend for this OS yet (see core/backend.hpp)"
#endif
