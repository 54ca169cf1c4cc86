// A byte stream that is either a plain TCP socket or TLS over one, with the
// choice made at run time (after SSLRequest), so sessions use one type for
// both. The TLS state (tens of kilobytes of record buffers) exists only once
// TLS is started: plain connections do not pay for it.
#pragma once

#include <cstddef>
#include <memory>
#include <string_view>
#include <tuple>

#include "proxy/asio.h"

namespace tenantgate::proxy {

class Stream {
 public:
  // The socket is put in non-blocking mode so that write() can first try to
  // send without suspending; asynchronous operations are unaffected.
  explicit Stream(tcp::socket socket) : socket_(std::move(socket)) {
    error_code ignored;
    socket_.non_blocking(true, ignored);
  }

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

  // Reads whatever is available (at least one byte) into buf. Not a coroutine
  // itself: the caller awaits the socket (or TLS) operation directly, which
  // saves a coroutine frame per read on the relay path.
  awaitable<std::tuple<error_code, std::size_t>> read_some(asio::mutable_buffer buf) {
    if (tls_active_) return tls_->async_read_some(buf, use_nothrow);
    return socket_.async_read_some(buf, use_nothrow);
  }

  // Writes as much of data as the socket takes now, without waiting, and
  // removes it from the front of data. Returns false (ec set) when the socket
  // failed. A message usually fits in the send buffer, so this sends it with
  // one send(2) and no asynchronous operation (whose completion would be
  // queued and resume the caller later); write() the rest when data is not
  // empty afterwards. TLS, and a socket that was not open when the Stream was
  // made (a cancel request's), send nothing here.
  bool try_write(std::string_view& data, error_code& ec) {
    if (tls_active_ || data.empty() || !socket_.non_blocking()) return true;
    const std::size_t n = socket_.write_some(asio::buffer(data.data(), data.size()), ec);
    if (ec == asio::error::would_block || ec == asio::error::try_again) ec.clear();
    if (ec) return false;
    data.remove_prefix(n);
    return true;
  }

  // Writes all of data.
  awaitable<error_code> write(std::string_view data) {
    error_code ec;
    if (!try_write(data, ec)) co_return ec;
    if (data.empty()) co_return ec;
    auto buf = asio::buffer(data.data(), data.size());
    std::size_t n = 0;
    if (tls_active_) {
      std::tie(ec, n) = co_await asio::async_write(*tls_, buf, use_nothrow);
    } else {
      std::tie(ec, n) = co_await asio::async_write(socket_, buf, use_nothrow);
    }
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
