// A growable byte buffer for one direction of a connection: bytes are read
// into its free tail and consumed from its head as whole messages.
//
// Memory is not zero-filled on growth, and an emptied buffer that grew past
// its initial size (one read's worth) is released so that a large message
// does not pin its memory on an idle connection. A buffer of the initial
// size is kept: every read needs one, and freeing it after each message
// would allocate it again for the next read.
#pragma once

#include <cstddef>
#include <cstring>
#include <memory>
#include <span>
#include <string_view>

namespace tenantgate::proxy {

class ReadBuffer {
 public:
  // Also what a read asks prepare() for, so that an empty buffer never grows.
  static constexpr std::size_t kInitialSize = 16384;

  [[nodiscard]] std::string_view pending() const { return {data_.get() + begin_, end_ - begin_}; }
  [[nodiscard]] bool empty() const { return begin_ == end_; }

  void consume(std::size_t n) {
    begin_ += n;
    if (begin_ == end_) {
      begin_ = end_ = 0;
      if (capacity_ > kInitialSize) {  // a large message has passed: give the memory back
        data_.reset();
        capacity_ = 0;
      }
    }
  }

  // Free space of at least min_free bytes (more when available) to read into.
  [[nodiscard]] std::span<char> prepare(std::size_t min_free) {
    if (capacity_ - end_ < min_free) {
      const std::size_t used = end_ - begin_;
      if (begin_ > 0 && capacity_ - used >= min_free) {
        std::memmove(data_.get(), data_.get() + begin_, used);
      } else {
        std::size_t cap = capacity_ == 0 ? kInitialSize : capacity_;
        while (cap - used < min_free) cap *= 2;
        auto grown = std::unique_ptr<char[]>(new char[cap]);
        if (used) std::memcpy(grown.get(), data_.get() + begin_, used);
        data_ = std::move(grown);
        capacity_ = cap;
      }
      begin_ = 0;
      end_ = used;
    }
    return {data_.get() + end_, capacity_ - end_};
  }

  void commit(std::size_t n) { end_ += n; }

 private:
  std::unique_ptr<char[]> data_;
  std::size_t capacity_ = 0;
  std::size_t begin_ = 0;
  std::size_t end_ = 0;
};

}  // namespace tenantgate::proxy
