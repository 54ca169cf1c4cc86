// The Boost.Asio names tenantgate uses, in one place, so that the few
// Asio-heavy translation units spell them the same way.
#pragma once

#include <boost/asio.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ssl.hpp>

namespace tenantgate::proxy {

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
using tcp = boost::asio::ip::tcp;
using boost::system::error_code;
template <typename T>
using awaitable = boost::asio::awaitable<T>;

// Completion token for the data path: errors come back as values.
inline constexpr auto use_nothrow = asio::as_tuple(asio::use_awaitable);

}  // namespace tenantgate::proxy
