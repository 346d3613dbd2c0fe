#define FUSE_USE_VERSION 312

#include "filesystem.hpp"

#include <fuse_lowlevel.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

namespace evw::sim::detail {
namespace {

// What poll() on any sysfs attribute reports (the kernel's DEFAULT_POLLMASK); sysfs_notify
// adds POLLPRI | POLLERR until the open file has read the attribute again.
constexpr unsigned kDefaultPollMask = POLLIN | POLLOUT | POLLRDNORM | POLLWRNORM;

// A sysfs store sees at most one page of a write.
constexpr std::size_t kPageSize = 4096;

constexpr const char* kLabel = "gpio-sim";

// "gpio17" -> 17 with the canonical decimal spelling only (no "gpio017", no "gpio+1").
bool parse_suffix(std::string_view name, std::string_view prefix, unsigned& number) {
  if (name.size() <= prefix.size() || name.substr(0, prefix.size()) != prefix) return false;
  const std::string_view digits = name.substr(prefix.size());
  if (digits.size() > 1 && digits.front() == '0') return false;
  const auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), number);
  return error == std::errc() && end == digits.data() + digits.size();
}

}  // namespace

struct Filesystem::Handle {
  Node node;
  std::uint64_t generation = 0;  // of the line's export this file was opened on
  std::uint64_t seen = 0;        // line events this file has read past
  fuse_pollhandle* poll = nullptr;
  std::vector<DirEntry> entries;  // directory snapshot taken at opendir

  Handle() = default;
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  ~Handle() {
    if (poll) fuse_pollhandle_destroy(poll);
  }
};

Filesystem::Filesystem(unsigned chips, unsigned lines_per_chip)
    : model_(chips, lines_per_chip, [this](unsigned line) { notify(line); }),
      line_count_(model_.line_count()),
      uid_(getuid()),
      gid_(getgid()),
      started_(std::time(nullptr)) {}

// Files whose RELEASE never arrived (the mount went away first) are freed here.
Filesystem::~Filesystem() = default;

void Filesystem::set_input(unsigned line, int level) {
  std::lock_guard lock(mutex_);
  model_.set_input(line, level);
}

int Filesystem::input(unsigned line) const {
  std::lock_guard lock(mutex_);
  return model_.line(line).input_level;
}

std::uint64_t Filesystem::ino_of(Node node) noexcept {
  if (node.kind == Kind::Root) return FUSE_ROOT_ID;
  return (static_cast<std::uint64_t>(node.kind) << 32) | node.index;
}

std::optional<Filesystem::Node> Filesystem::node_of(std::uint64_t ino) noexcept {
  if (ino == FUSE_ROOT_ID) return Node{};
  const auto kind = static_cast<std::uint32_t>(ino >> 32);
  if (kind <= static_cast<std::uint32_t>(Kind::Root) || kind > static_cast<std::uint32_t>(Kind::ActiveLow)) {
    return std::nullopt;
  }
  return Node{static_cast<Kind>(kind), static_cast<unsigned>(ino & 0xffffffffu)};
}

bool Filesystem::is_dir(Kind kind) noexcept {
  return kind == Kind::Root || kind == Kind::SimDir || kind == Kind::ChipDir || kind == Kind::LineDir;
}

bool Filesystem::is_line_file(Kind kind) noexcept {
  return kind == Kind::Direction || kind == Kind::Edge || kind == Kind::Value || kind == Kind::ActiveLow;
}

bool Filesystem::exists(Node node) const {
  switch (node.kind) {
    case Kind::Root:
    case Kind::Export:
    case Kind::Unexport:
    case Kind::SimDir:
      return node.index == 0;
    case Kind::SimLine:
      return node.index < line_count_;
    case Kind::ChipDir:
    case Kind::ChipBase:
    case Kind::ChipNgpio:
    case Kind::ChipLabel:
      return node.index < model_.chips();
    case Kind::LineDir:
    case Kind::Direction:
    case Kind::Edge:
    case Kind::Value:
    case Kind::ActiveLow:
      return node.index < line_count_ && model_.line(node.index).exported;
  }
  return false;
}

std::optional<Filesystem::Node> Filesystem::child(Node dir, std::string_view name) const {
  unsigned number = 0;
  std::optional<Node> found;
  switch (dir.kind) {
    case Kind::Root:
      if (name == "export") found = Node{Kind::Export, 0};
      else if (name == "unexport") found = Node{Kind::Unexport, 0};
      else if (name == "sim") found = Node{Kind::SimDir, 0};
      // Chip directories are named after their base, as the kernel names them.
      else if (parse_suffix(name, "gpiochip", number) && number % model_.lines_per_chip() == 0)
        found = Node{Kind::ChipDir, number / model_.lines_per_chip()};
      else if (parse_suffix(name, "gpio", number)) found = Node{Kind::LineDir, number};
      break;
    case Kind::ChipDir:
      if (name == "base") found = Node{Kind::ChipBase, dir.index};
      else if (name == "ngpio") found = Node{Kind::ChipNgpio, dir.index};
      else if (name == "label") found = Node{Kind::ChipLabel, dir.index};
      break;
    case Kind::LineDir:
      if (name == "direction") found = Node{Kind::Direction, dir.index};
      else if (name == "edge") found = Node{Kind::Edge, dir.index};
      else if (name == "value") found = Node{Kind::Value, dir.index};
      else if (name == "active_low") found = Node{Kind::ActiveLow, dir.index};
      break;
    case Kind::SimDir:
      if (parse_suffix(name, "gpio", number)) found = Node{Kind::SimLine, number};
      break;
    default:
      break;
  }
  if (found && !exists(*found)) found.reset();
  return found;
}

std::vector<Filesystem::DirEntry> Filesystem::children(Node dir) const {
  std::vector<DirEntry> out{{".", dir}, {"..", Node{}}};
  const auto add = [&out](std::string name, Kind kind, unsigned index) {
    out.push_back({std::move(name), Node{kind, index}});
  };
  switch (dir.kind) {
    case Kind::Root:
      add("export", Kind::Export, 0);
      add("unexport", Kind::Unexport, 0);
      add("sim", Kind::SimDir, 0);
      for (unsigned k = 0; k < model_.chips(); ++k) {
        add("gpiochip" + std::to_string(k * model_.lines_per_chip()), Kind::ChipDir, k);
      }
      for (unsigned n = 0; n < line_count_; ++n) {
        if (model_.line(n).exported) add("gpio" + std::to_string(n), Kind::LineDir, n);
      }
      break;
    case Kind::ChipDir:
      add("base", Kind::ChipBase, dir.index);
      add("label", Kind::ChipLabel, dir.index);
      add("ngpio", Kind::ChipNgpio, dir.index);
      break;
    case Kind::LineDir:
      add("active_low", Kind::ActiveLow, dir.index);
      add("direction", Kind::Direction, dir.index);
      add("edge", Kind::Edge, dir.index);
      add("value", Kind::Value, dir.index);
      break;
    case Kind::SimDir:
      for (unsigned n = 0; n < line_count_; ++n) add("gpio" + std::to_string(n), Kind::SimLine, n);
      break;
    default:
      break;
  }
  return out;
}

void Filesystem::fill_stat(Node node, struct stat& st) const {
  st = {};
  st.st_ino = ino_of(node);
  st.st_uid = uid_;
  st.st_gid = gid_;
  st.st_atime = st.st_mtime = st.st_ctime = started_;
  if (is_dir(node.kind)) {
    st.st_mode = S_IFDIR | 0755;
    st.st_nlink = 2;
    return;
  }
  st.st_nlink = 1;
  st.st_size = kPageSize;  // sysfs reports every attribute as one page
  st.st_blksize = kPageSize;
  switch (node.kind) {
    case Kind::Export:
    case Kind::Unexport:
      st.st_mode = S_IFREG | 0200;
      break;
    case Kind::ChipBase:
    case Kind::ChipNgpio:
    case Kind::ChipLabel:
      st.st_mode = S_IFREG | 0444;
      break;
    default:
      st.st_mode = S_IFREG | 0644;
      break;
  }
}

bool Filesystem::stale(const Handle& handle) const {
  if (!is_line_file(handle.node.kind)) return false;
  const Line& line = model_.line(handle.node.index);
  return !line.exported || line.generation != handle.generation;
}

Filesystem::Handle* Filesystem::find(std::uint64_t id) {
  const auto it = handles_.find(id);
  return it == handles_.end() ? nullptr : it->second.get();
}

std::uint64_t Filesystem::add(std::unique_ptr<Handle> handle) {
  const std::uint64_t id = next_handle_++;
  handles_.emplace(id, std::move(handle));
  return id;
}

int Filesystem::render(Handle& handle, std::string& out) {
  // A removed kernfs node answers ENODEV to files that are still open on it.
  if (stale(handle)) return ENODEV;
  const unsigned index = handle.node.index;
  switch (handle.node.kind) {
    case Kind::ChipBase: out = std::to_string(index * model_.lines_per_chip()) + "\n"; return 0;
    case Kind::ChipNgpio: out = std::to_string(model_.lines_per_chip()) + "\n"; return 0;
    case Kind::ChipLabel: out = std::string(kLabel) + "\n"; return 0;
    case Kind::SimLine: out = model_.read_level(index); return 0;
    case Kind::Direction: out = model_.read(Attribute::Direction, index); return 0;
    case Kind::Edge: out = model_.read(Attribute::Edge, index); return 0;
    case Kind::ActiveLow: out = model_.read(Attribute::ActiveLow, index); return 0;
    case Kind::Value:
      out = model_.read(Attribute::Value, index);
      // gpiolib's `value` is a preallocated sysfs attribute (DEVICE_ATTR_PREALLOC), read
      // through kernfs_file_read_iter, not seq_file: every read, at any offset (also at
      // EOF), formats it and marks the event seen. Checked against the kernel by
      // tests/kernel/differential.
      handle.seen = model_.line(index).events;
      return 0;
    default:
      return EIO;
  }
}

int Filesystem::store(Handle& handle, std::string_view text) {
  if (stale(handle)) return ENODEV;
  const unsigned index = handle.node.index;
  switch (handle.node.kind) {
    case Kind::Export: return model_.export_line(text);
    case Kind::Unexport: return model_.unexport_line(text);
    case Kind::SimLine: return model_.write_level(index, text);
    case Kind::Direction: return model_.write(Attribute::Direction, index, text);
    case Kind::Edge: return model_.write(Attribute::Edge, index, text);
    case Kind::Value: return model_.write(Attribute::Value, index, text);
    case Kind::ActiveLow: return model_.write(Attribute::ActiveLow, index, text);
    default: return EIO;
  }
}

void Filesystem::notify(unsigned line) {
  // Only an edge wakes anyone, and only pollers of `value` (sysfs_notify on the value
  // node). Unexport wakes nobody: kernfs removes the node without waking its pollers.
  for (const auto& [id, handle] : handles_) {
    if (!handle->poll || handle->node.kind != Kind::Value || handle->node.index != line) continue;
    // The handle stays registered: epoll asks for a poll handle only once, at EPOLL_CTL_ADD.
    fuse_lowlevel_notify_poll(handle->poll);
  }
}

void Filesystem::lookup(fuse_req* req, std::uint64_t parent, const char* name) {
  fuse_entry_param entry{};
  {
    std::lock_guard lock(mutex_);
    const auto dir = node_of(parent);
    if (!dir || !exists(*dir)) {
      fuse_reply_err(req, ENOENT);
      return;
    }
    if (!is_dir(dir->kind)) {
      fuse_reply_err(req, ENOTDIR);
      return;
    }
    const auto found = child(*dir, name);
    if (!found) {
      fuse_reply_err(req, ENOENT);  // an error reply is never cached as a negative entry
      return;
    }
    entry.ino = ino_of(*found);
    fill_stat(*found, entry.attr);
  }
  entry.attr_timeout = 0.0;
  entry.entry_timeout = 0.0;
  fuse_reply_entry(req, &entry);
}

void Filesystem::getattr(fuse_req* req, std::uint64_t ino) {
  struct stat st {};
  {
    std::lock_guard lock(mutex_);
    const auto node = node_of(ino);
    if (!node || !exists(*node)) {
      fuse_reply_err(req, ENOENT);
      return;
    }
    fill_stat(*node, st);
  }
  fuse_reply_attr(req, &st, 0.0);
}

void Filesystem::open(fuse_req* req, std::uint64_t ino, fuse_file_info* fi) {
  std::unique_lock lock(mutex_);
  const auto node = node_of(ino);
  if (!node || !exists(*node)) {
    lock.unlock();
    fuse_reply_err(req, ENOENT);
    return;
  }
  if (is_dir(node->kind)) {
    lock.unlock();
    fuse_reply_err(req, EISDIR);
    return;
  }
  // kernfs refuses, even to root, to open for reading a file without show() and for
  // writing one without store().
  const int mode = fi->flags & O_ACCMODE;
  const bool readable = node->kind != Kind::Export && node->kind != Kind::Unexport;
  const bool writable =
      node->kind != Kind::ChipBase && node->kind != Kind::ChipNgpio && node->kind != Kind::ChipLabel;
  if ((mode != O_WRONLY && !readable) || (mode != O_RDONLY && !writable)) {
    lock.unlock();
    fuse_reply_err(req, EACCES);
    return;
  }
  auto handle = std::make_unique<Handle>();
  handle->node = *node;
  if (is_line_file(node->kind)) {
    const Line& line = model_.line(node->index);
    handle->generation = line.generation;
    // kernfs: a node's event counter starts at 1 and a new open file's at 0,
    // so poll reports POLLPRI|POLLERR until the first read (the "priming read").
    handle->seen = line.events - 1;
  }
  fi->fh = add(std::move(handle));
  lock.unlock();
  fi->direct_io = 1;  // no page cache: every read reaches render()
  fi->keep_cache = 0;
  fi->noflush = 1;
  if (fuse_reply_open(req, fi) != 0) {
    // The opener is gone (interrupted); no RELEASE will come for this handle.
    std::lock_guard relock(mutex_);
    handles_.erase(fi->fh);
  }
}

void Filesystem::read(fuse_req* req, std::size_t size, off_t off, fuse_file_info* fi) {
  std::string content;
  int error = 0;
  {
    std::lock_guard lock(mutex_);
    Handle* handle = find(fi->fh);
    error = handle ? render(*handle, content) : EBADF;
  }
  if (error != 0) {
    fuse_reply_err(req, error);
    return;
  }
  const auto start = std::min(content.size(), static_cast<std::size_t>(std::max<off_t>(off, 0)));
  const auto count = std::min(size, content.size() - start);
  fuse_reply_buf(req, content.data() + start, count);
}

void Filesystem::write(fuse_req* req, const char* buf, std::size_t size, fuse_file_info* fi) {
  // sysfs ignores the file offset, stores at most one page per write, and hands the store a
  // C string, so anything after a NUL byte is not seen.
  const std::size_t accepted = std::min(size, kPageSize);
  std::string_view text(buf, accepted);
  text = text.substr(0, text.find('\0'));
  int error = 0;
  {
    std::lock_guard lock(mutex_);
    Handle* handle = find(fi->fh);
    if (!handle) error = EBADF;
    else if (size != 0) error = store(*handle, text);  // an empty write never reaches the store
  }
  if (error != 0) fuse_reply_err(req, error);
  else fuse_reply_write(req, accepted);
}

void Filesystem::poll(fuse_req* req, fuse_file_info* fi, fuse_pollhandle* ph) {
  unsigned revents = kDefaultPollMask;
  int error = 0;
  {
    std::lock_guard lock(mutex_);
    Handle* handle = find(fi->fh);
    if (!handle) {
      error = EBADF;
    } else if (is_line_file(handle->node.kind)) {
      if (stale(*handle) || (handle->node.kind == Kind::Value &&
                             handle->seen != model_.line(handle->node.index).events)) {
        revents |= POLLPRI | POLLERR;
      }
      // The kernel sends a poll handle when it starts waiting (poll() each call, epoll once
      // at EPOLL_CTL_ADD); keep the newest until the file is released.
      if (ph) {
        if (handle->poll) fuse_pollhandle_destroy(handle->poll);
        handle->poll = ph;
        ph = nullptr;
      }
    }
  }
  if (ph) fuse_pollhandle_destroy(ph);  // nothing else on this file is ever notified
  if (error != 0) fuse_reply_err(req, error);
  else fuse_reply_poll(req, revents);
}

void Filesystem::release(fuse_req* req, fuse_file_info* fi) {
  std::unique_ptr<Handle> handle;
  {
    std::lock_guard lock(mutex_);
    if (const auto it = handles_.find(fi->fh); it != handles_.end()) {
      handle = std::move(it->second);
      handles_.erase(it);
    }
  }
  fuse_reply_err(req, 0);
}

void Filesystem::opendir(fuse_req* req, std::uint64_t ino, fuse_file_info* fi) {
  std::unique_lock lock(mutex_);
  const auto node = node_of(ino);
  if (!node || !exists(*node)) {
    lock.unlock();
    fuse_reply_err(req, ENOENT);
    return;
  }
  if (!is_dir(node->kind)) {
    lock.unlock();
    fuse_reply_err(req, ENOTDIR);
    return;
  }
  auto handle = std::make_unique<Handle>();
  handle->node = *node;
  handle->entries = children(*node);  // a snapshot keeps offsets stable while lines come and go
  fi->fh = add(std::move(handle));
  lock.unlock();
  if (fuse_reply_open(req, fi) != 0) {
    std::lock_guard relock(mutex_);
    handles_.erase(fi->fh);
  }
}

void Filesystem::readdir(fuse_req* req, std::size_t size, off_t off, fuse_file_info* fi) {
  std::vector<char> buf(size);
  std::size_t used = 0;
  {
    std::lock_guard lock(mutex_);
    Handle* handle = find(fi->fh);
    if (!handle) {
      fuse_reply_err(req, EBADF);
      return;
    }
    for (auto i = static_cast<std::size_t>(std::max<off_t>(off, 0)); i < handle->entries.size(); ++i) {
      const DirEntry& entry = handle->entries[i];
      struct stat st {};
      st.st_ino = ino_of(entry.node);
      st.st_mode = is_dir(entry.node.kind) ? S_IFDIR : S_IFREG;
      const std::size_t need = fuse_add_direntry(req, buf.data() + used, size - used, entry.name.c_str(),
                                                 &st, static_cast<off_t>(i + 1));
      if (need > size - used) break;
      used += need;
    }
  }
  fuse_reply_buf(req, buf.data(), used);
}

// C entry points: each forwards to the Filesystem given to fuse_session_new() as userdata.
struct FuseOps {
  static Filesystem& self(fuse_req_t req) { return *static_cast<Filesystem*>(fuse_req_userdata(req)); }

  // No exception may unwind into libfuse's C frames; the only ones possible are allocation
  // failures, which happen before a handler replies.
  template <class Call>
  static void guarded(fuse_req_t req, Call&& call) noexcept {
    try {
      call();
    } catch (...) {
      fuse_reply_err(req, ENOMEM);
    }
  }

  static void lookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
    guarded(req, [&] { self(req).lookup(req, parent, name); });
  }
  static void forget(fuse_req_t req, fuse_ino_t, uint64_t) { fuse_reply_none(req); }  // inodes are computed, not stored
  static void forget_multi(fuse_req_t req, size_t, fuse_forget_data*) { fuse_reply_none(req); }
  static void getattr(fuse_req_t req, fuse_ino_t ino, fuse_file_info*) {
    guarded(req, [&] { self(req).getattr(req, ino); });
  }
  // Truncation (O_TRUNC from `echo >`) and mode changes are accepted and ignored.
  static void setattr(fuse_req_t req, fuse_ino_t ino, struct stat*, int, fuse_file_info*) {
    guarded(req, [&] { self(req).getattr(req, ino); });
  }
  static void open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
    guarded(req, [&] { self(req).open(req, ino, fi); });
  }
  static void read(fuse_req_t req, fuse_ino_t, size_t size, off_t off, fuse_file_info* fi) {
    guarded(req, [&] { self(req).read(req, size, off, fi); });
  }
  static void write(fuse_req_t req, fuse_ino_t, const char* buf, size_t size, off_t, fuse_file_info* fi) {
    guarded(req, [&] { self(req).write(req, buf, size, fi); });
  }
  static void poll(fuse_req_t req, fuse_ino_t, fuse_file_info* fi, fuse_pollhandle* ph) {
    guarded(req, [&] { self(req).poll(req, fi, ph); });
  }
  static void release(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
    guarded(req, [&] { self(req).release(req, fi); });
  }
  static void opendir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
    guarded(req, [&] { self(req).opendir(req, ino, fi); });
  }
  static void readdir(fuse_req_t req, fuse_ino_t, size_t size, off_t off, fuse_file_info* fi) {
    guarded(req, [&] { self(req).readdir(req, size, off, fi); });
  }
  static void releasedir(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
    guarded(req, [&] { self(req).release(req, fi); });
  }

  // sysfs directories have no create(), so open(O_CREAT) says EACCES; the other namespace
  // changes find no inode operation and say EPERM.
  static void create(fuse_req_t req, fuse_ino_t, const char*, mode_t, fuse_file_info*) { fuse_reply_err(req, EACCES); }
  static void mknod(fuse_req_t req, fuse_ino_t, const char*, mode_t, dev_t) { fuse_reply_err(req, EPERM); }
  static void mkdir(fuse_req_t req, fuse_ino_t, const char*, mode_t) { fuse_reply_err(req, EPERM); }
  static void unlink(fuse_req_t req, fuse_ino_t, const char*) { fuse_reply_err(req, EPERM); }
  static void rmdir(fuse_req_t req, fuse_ino_t, const char*) { fuse_reply_err(req, EPERM); }
  static void symlink(fuse_req_t req, const char*, fuse_ino_t, const char*) { fuse_reply_err(req, EPERM); }
  static void rename(fuse_req_t req, fuse_ino_t, const char*, fuse_ino_t, const char*, unsigned) {
    fuse_reply_err(req, EPERM);
  }
  static void link(fuse_req_t req, fuse_ino_t, fuse_ino_t, const char*) { fuse_reply_err(req, EPERM); }

  static fuse_lowlevel_ops make() {
    fuse_lowlevel_ops ops{};
    ops.lookup = lookup;
    ops.forget = forget;
    ops.forget_multi = forget_multi;
    ops.getattr = getattr;
    ops.setattr = setattr;
    ops.open = open;
    ops.read = read;
    ops.write = write;
    ops.poll = poll;
    ops.release = release;
    ops.opendir = opendir;
    ops.readdir = readdir;
    ops.releasedir = releasedir;
    ops.create = create;
    ops.mknod = mknod;
    ops.mkdir = mkdir;
    ops.unlink = unlink;
    ops.rmdir = rmdir;
    ops.symlink = symlink;
    ops.rename = rename;
    ops.link = link;
    return ops;
  }
};

const fuse_lowlevel_ops& Filesystem::operations() noexcept {
  static const fuse_lowlevel_ops ops = FuseOps::make();
  return ops;
}

}  // namespace evw::sim::detail
