#include "mounts.hpp"

#include <fcntl.h>

#include <charconv>
#include <cstddef>
#include <string>
#include <unordered_map>

#include "../core/access.hpp"
#include "../core/io_relay.hpp"
#include "../coro/edge.hpp"

namespace evw {

static_assert(sizeof(detail::EvStorage<32>) >= sizeof(ev_watcher));
static_assert(sizeof(detail::EvStorage<48>) >= sizeof(ev_io));

namespace {

// A mount table can be large (containers): far beyond an attribute's page.
constexpr std::size_t kMaxTable = std::size_t{64} << 20;

// The kernel escapes space, tab, newline and backslash as \ooo (mangle() in
// fs/proc_namespace.c): "/mnt/a\040b" is "/mnt/a b".
std::string unescape(std::string_view field) {
  std::string out;
  out.reserve(field.size());
  const auto octal = [&](std::size_t j) { return field[j] >= '0' && field[j] <= '7'; };
  for (std::size_t i = 0; i < field.size(); ++i) {
    if (field[i] == '\\' && i + 3 < field.size() && octal(i + 1) && octal(i + 2) && octal(i + 3)) {
      out += static_cast<char>(((field[i + 1] - '0') << 6) | ((field[i + 2] - '0') << 3) | (field[i + 3] - '0'));
      i += 3;
    } else {
      out += field[i];
    }
  }
  return out;
}

template <class T>
bool number(std::string_view text, T& out) {
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && end == text.data() + text.size();
}

// Splits at single spaces, keeping empty fields (an empty source shows as two spaces).
std::size_t split(std::string_view line, std::string_view* out, std::size_t max) {
  std::size_t n = 0;
  while (n < max) {
    const std::size_t space = line.find(' ');
    out[n++] = line.substr(0, space);
    if (space == std::string_view::npos) return n;
    line.remove_prefix(space + 1);
  }
  return max + 1;  // too many fields
}

bool parse_line(std::string_view line, MountEntry& e) {
  // id parent major:minor root mount_point options [optional...] - fstype source super_options
  constexpr std::size_t kMaxFields = 64;
  std::string_view f[kMaxFields];
  const std::size_t n = split(line, f, kMaxFields);
  if (n < 10 || n > kMaxFields) return false;
  std::size_t dash = 6;
  while (dash < n && f[dash] != "-") ++dash;
  if (dash + 4 != n) return false;  // fstype, source, super_options after the dash
  const std::size_t colon = f[2].find(':');
  if (colon == std::string_view::npos || !number(f[0], e.id) || !number(f[1], e.parent_id) ||
      !number(f[2].substr(0, colon), e.major) || !number(f[2].substr(colon + 1), e.minor))
    return false;
  e.root = unescape(f[3]);
  e.mount_point = unescape(f[4]);
  e.options = std::string(f[5]);
  e.propagation.clear();
  for (std::size_t i = 6; i < dash; ++i) {
    if (!e.propagation.empty()) e.propagation += ' ';
    e.propagation += f[i];
  }
  e.fstype = unescape(f[dash + 1]);
  e.source = unescape(f[dash + 2]);
  e.super_options = std::string(f[dash + 3]);
  return true;
}

// The same mount, changed (remount, move, propagation), or a new mount that
// reuses a gone one's id (ids are recycled at once): the filesystem tells.
bool same_mount(const MountEntry& a, const MountEntry& b) {
  return a.major == b.major && a.minor == b.minor && a.root == b.root && a.fstype == b.fstype;
}

}  // namespace

std::vector<MountEntry> Mounts::parse(std::string_view text) {
  std::vector<MountEntry> table;
  MountEntry entry;
  while (!text.empty()) {
    const std::size_t end = text.find('\n');
    const std::string_view line = text.substr(0, end);
    text = end == std::string_view::npos ? std::string_view() : text.substr(end + 1);
    if (parse_line(line, entry)) table.push_back(entry);
  }
  return table;
}

std::vector<MountChange> Mounts::diff(const std::vector<MountEntry>& before,
                                      const std::vector<MountEntry>& after) {
  std::unordered_map<int, std::size_t> old_at, new_at;
  old_at.reserve(before.size());
  new_at.reserve(after.size());
  for (std::size_t i = 0; i < before.size(); ++i) old_at.emplace(before[i].id, i);
  for (std::size_t i = 0; i < after.size(); ++i) new_at.emplace(after[i].id, i);
  std::vector<MountChange> changes;
  using Kind = MountChange::Kind;
  for (const MountEntry& e : before) {
    const auto it = new_at.find(e.id);
    if (it == new_at.end() || !same_mount(e, after[it->second]))
      changes.push_back({Kind::Removed, e, {}});
  }
  for (const MountEntry& e : after) {
    const auto it = old_at.find(e.id);
    if (it == old_at.end() || !same_mount(before[it->second], e))
      changes.push_back({Kind::Added, e, {}});
  }
  for (const MountEntry& e : after) {
    const auto it = old_at.find(e.id);
    if (it != old_at.end() && same_mount(before[it->second], e) && !(before[it->second] == e))
      changes.push_back({Kind::Changed, e, before[it->second]});
  }
  return changes;
}

struct detail::MountsTrampoline {
  // The watcher's own libev watcher: what the ev_io relays, and fed events.
  static void on_fed(struct ev_loop*, ev_watcher* w, int revents) noexcept {
    static_cast<Mounts*>(w->data)->on_condition(revents);
  }
  // mountinfo's own set is readable: libev's check of it took the change.
  static void on_io(struct ev_loop* loop, ev_io* io, int) noexcept {
    auto& self = *static_cast<Mounts*>(io->data);
    io_relay::relay(*Access::loop(self), loop, &self.ev_, Event::Pri);
  }
};

namespace {

// Opens a mountinfo file, puts it in a set of its own, reads the table.
// The set before the read: a change in between is then either in the table
// or reported, never lost. @throws std::system_error naming the call.
void open_table(detail::AttrFile& file, detail::OwnEpoll& own, const std::string& path, std::string& text) {
  if (const int err = file.open(path, O_RDONLY); err != 0)
    detail::throw_file_error("Mounts", "open", path, err);
  const char* op;
  if (const int err = own.watch(file.fd(), &op); err != 0) detail::throw_file_error("Mounts", op, path, err);
  if (const int err = file.reread(text, &op, kMaxTable); err != 0)
    detail::throw_file_error("Mounts", op, path, err);
}

}  // namespace

Mounts::Mounts(Loop& loop, std::string path, Callback cb)
    : Watcher(loop, &ev_, "Mounts", std::move(cb)) {
  if (path.empty()) detail::throw_invalid("Mounts", "path", "is empty");
  ev_set_cb(detail::ev_of<ev_watcher>(*this), detail::MountsTrampoline::on_fed);
  detail::io_relay::init(&io_, detail::MountsTrampoline::on_io, this);
  // No priming read for the condition (procfs remembers the table's change
  // count at open), but the table to compare with is read now.
  open_table(file_, own_, path, text_);
  table_ = parse(text_);
  path_ = std::move(path);
}

Mounts::~Mounts() { stop(); }

// The file and its set go along: other is left with neither. The ev_io is set
// up here (its data points to this watcher); finish_move starts it if other's was.
Mounts::Mounts(Mounts&& other)
    : Watcher(std::move(other), &ev_),
      file_(std::move(other.file_)),
      own_(std::move(other.own_)),
      path_(std::move(other.path_)),
      text_(std::move(other.text_)),
      table_(std::move(other.table_)),
      changes_(std::move(other.changes_)),
      error_(other.error_) {
  detail::io_relay::init(&io_, detail::MountsTrampoline::on_io, this);
  finish_move(other, sizeof ev_);
  detail::EdgeHook<Mounts>::moved(other, *this);  // a coroutine awaiting next() follows
}

void Mounts::set(std::string path) {
  if (path.empty()) detail::throw_invalid("Mounts", "path", "is empty");
  detail::AttrFile fresh;
  detail::OwnEpoll own;
  std::string text;
  open_table(fresh, own, path, text);
  std::vector<MountEntry> table = parse(text);
  Frozen frozen = freeze();
  file_ = std::move(fresh);
  own_ = std::move(own);
  text_ = std::move(text);
  table_ = std::move(table);
  changes_.clear();
  path_ = std::move(path);
  error_.clear();
  thaw(frozen);
}

void Mounts::start_impl() {
  detail::io_relay::start(raw_loop(), &io_, own_.fd(), priority());
  error_.clear();
}

void Mounts::stop_impl() noexcept { detail::io_relay::stop(raw_loop(), &io_); }

bool Mounts::active_impl() const noexcept { return detail::io_relay::active(&io_); }

// A readable set not yet relayed counts as the pending event (set() feeds it
// back; the reread and diff happen when it is delivered).
int Mounts::take_pending() noexcept {
  return detail::io_relay::take_pending(raw_loop(), &io_, &ev_, Event::Pri);
}

bool Mounts::pending_impl() const noexcept { return detail::io_relay::pending(&io_, &ev_); }

const MountEntry* Mounts::find(std::string_view mount_point) const noexcept {
  for (auto it = table_.rbegin(); it != table_.rend(); ++it)
    if (it->mount_point == mount_point) return &*it;
  return nullptr;
}

void Mounts::on_condition(int revents) noexcept {
  if (detail::Access::failed(*detail::Access::loop(*this))) {
    detail::dispatch(*this, revents);  // deferred untouched, read when fed back
    return;
  }
  // The set stays readable until this (a failure stops the watcher: no spin).
  int err = own_.forget_ready();
  const char* op;
  if (err == 0) err = file_.reread(text_, &op, kMaxTable);
  if (err == 0) {
    try {
      std::vector<MountEntry> table = parse(text_);
      changes_ = diff(table_, table);
      table_ = std::move(table);
    } catch (const std::bad_alloc&) {
      err = ENOMEM;
    }
  }
  if (err != 0) {
    error_ = std::error_code(err, std::generic_category());
    stop();  // a gone file stays "ready" forever: do not spin on it
    detail::dispatch(*this, Event::Error);
    return;
  }
  detail::dispatch(*this, revents);  // may destroy *this: touch nothing after
}

}  // namespace evw
