// The FUSE side of gpio-sim: inodes, open files and poll handles over a Model, served with the
// libfuse3 low-level API. Every file is opened with direct_io and every entry and attribute
// has a zero timeout, so each read reaches the model and lseek(0) + read works as on sysfs.
//
// Threads: FUSE requests arrive on the serving thread; set_input() may come from any thread.
// One mutex guards the model and the open files. Nothing done under it touches the mount
// (poll notifications are one-way writes to /dev/fuse), so a test that reads the files its
// own process serves cannot deadlock.
#pragma once

#include "model.hpp"

#include <cstdint>
#include <ctime>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <sys/types.h>
#include <unordered_map>
#include <vector>

struct fuse_req;
struct fuse_file_info;
struct fuse_pollhandle;
struct fuse_lowlevel_ops;
struct stat;

namespace evw::sim::detail {

struct FuseOps;

class Filesystem {
 public:
  Filesystem(unsigned chips, unsigned lines_per_chip);
  ~Filesystem();
  Filesystem(const Filesystem&) = delete;
  Filesystem& operator=(const Filesystem&) = delete;

  /// The operation table to hand to fuse_session_new(), with this object as userdata.
  static const fuse_lowlevel_ops& operations() noexcept;

  unsigned line_count() const noexcept { return line_count_; }
  void set_input(unsigned line, int level);  // line must be < line_count()
  int input(unsigned line) const;

 private:
  friend struct FuseOps;

  enum class Kind : std::uint32_t {
    Root = 1, Export, Unexport, SimDir, SimLine,
    ChipDir, ChipBase, ChipNgpio, ChipLabel,
    LineDir, Direction, Edge, Value, ActiveLow,
  };
  struct Node {
    Kind kind = Kind::Root;
    unsigned index = 0;  // line number or chip index
  };
  struct DirEntry {
    std::string name;
    Node node;
  };
  struct Handle;

  static std::uint64_t ino_of(Node node) noexcept;
  static std::optional<Node> node_of(std::uint64_t ino) noexcept;
  static bool is_dir(Kind kind) noexcept;
  static bool is_line_file(Kind kind) noexcept;

  // All of these expect mutex_ held.
  bool exists(Node node) const;
  std::optional<Node> child(Node dir, std::string_view name) const;
  std::vector<DirEntry> children(Node dir) const;
  void fill_stat(Node node, struct stat& st) const;
  bool stale(const Handle& handle) const;
  Handle* find(std::uint64_t id);
  std::uint64_t add(std::unique_ptr<Handle> handle);
  int render(Handle& handle, std::string& out);
  int store(Handle& handle, std::string_view text);
  void notify(unsigned line);

  // FUSE requests.
  void lookup(fuse_req* req, std::uint64_t parent, const char* name);
  void getattr(fuse_req* req, std::uint64_t ino);
  void open(fuse_req* req, std::uint64_t ino, fuse_file_info* fi);
  void read(fuse_req* req, std::size_t size, off_t off, fuse_file_info* fi);
  void write(fuse_req* req, const char* buf, std::size_t size, fuse_file_info* fi);
  void poll(fuse_req* req, fuse_file_info* fi, fuse_pollhandle* ph);
  void release(fuse_req* req, fuse_file_info* fi);
  void opendir(fuse_req* req, std::uint64_t ino, fuse_file_info* fi);
  void readdir(fuse_req* req, std::size_t size, off_t off, fuse_file_info* fi);

  mutable std::mutex mutex_;
  Model model_;
  unsigned line_count_;
  uid_t uid_;
  gid_t gid_;
  std::time_t started_;
  std::unordered_map<std::uint64_t, std::unique_ptr<Handle>> handles_;
  std::uint64_t next_handle_ = 1;
};

}  // namespace evw::sim::detail
