// A byte stream that is either a plain TCP socket or TLS over one, with the
// choice made at run time (after SSLRequest), so sessions use one type for
// both. The TLS state (tens of kilobytes of record buffers) exists only once
// TLS is started: plain connections do not pay for it.
#pragma once

#include <cstddef>
#include <memory>
#include <string_view>

#include "proxy/asio.h"

namespace tenantgate::proxy {

class Stream {
 public:
  explicit Stream(tcp::socket socket) : socket_(std::move(socket)) {}

  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  [[nodiscard]] tcp::socket& socket() { return socket_; }
  [[nodiscard]] bool tls_active() const { return tls_active_; }

  // Creates the TLS state (before the handshake, so that callers can set
  // verification and SNI on it).
  ssl::stream<tcp::socket&>& start_tls(ssl::context& context) {
    tls_ = std::make_unique<ssl::stream<tcp::socket&>>(socket_, context);
    return *tls_;
  }

  // Runs the TLS handshake in the given role (after start_tls); on success
  // later I/O is encrypted.
  awaitable<error_code> handshake(ssl::stream_base::handshake_type role) {
    auto [ec] = co_await tls_->async_handshake(role, use_nothrow);
    if (!ec) tls_active_ = true;
    co_return ec;
  }

  // Reads whatever is available (at least one byte) into buf.
  awaitable<std::tuple<error_code, std::size_t>> read_some(asio::mutable_buffer buf) {
    if (tls_active_) co_return co_await tls_->async_read_some(buf, use_nothrow);
    co_return co_await socket_.async_read_some(buf, use_nothrow);
  }

  // Writes all of data.
  awaitable<error_code> write(std::string_view data) {
    auto buf = asio::buffer(data.data(), data.size());
    if (tls_active_) {
      auto [ec, n] = co_await asio::async_write(*tls_, buf, use_nothrow);
      co_return ec;
    }
    auto [ec, n] = co_await asio::async_write(socket_, buf, use_nothrow);
    co_return ec;
  }

  // Closes the socket without a TLS close_notify: used when the peer is gone
  // or misbehaving, and on shutdown after the last message was written.
  void close() {
    error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
  }

 private:
  tcp::socket socket_;
  std::unique_ptr<ssl::stream<tcp::socket&>> tls_;
  bool tls_active_ = false;
};

}  // namespace tenantgate::proxy
