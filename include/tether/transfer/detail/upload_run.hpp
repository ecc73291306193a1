// tether/transfer/detail/upload_run.hpp: one run of an upload: the source and its proof, the
// request body sender shared by PUT and tus (impl/upload.ipp), one PUT/POST (impl/put.ipp) and
// the tus 1.0 session (impl/tus.ipp).
#pragma once

#include <tether/net/url.hpp>
#include <tether/transfer/detail/connection.hpp>
#include <tether/transfer/detail/file.hpp>
#include <tether/transfer/detail/tus_plan.hpp>

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/verb.hpp>

#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace tether::transfer::detail {

using header_list = std::vector<std::pair<std::string, std::string>>;
using string_response = http::response<http::string_body>;

class upload_run {
 public:
  explicit upload_run(run_context& cx) : cx_(cx) {}

  /// Checks the source, then sends it (tus or one request) until the server has all of it.
  TETHER_DECL asio::awaitable<result> run();
  /// tus termination: asks the server to delete the upload when it offers termination (asking
  /// it first if this run has not), best effort, bounded by the connection timeouts.
  TETHER_DECL asio::awaitable<void> terminate();

 private:
  // impl/upload.ipp: the source, its digests, and sending a body.
  error_code check_source(std::string& why);
  std::string hash_range(std::uint64_t begin, std::uint64_t end, error_code& ec,
                         hash_algorithm alg = hash_algorithm::sha256);
  error_code acknowledge(std::uint64_t offset);
  void track_from(std::uint64_t begin);
  void track_sent(const char* p, std::size_t n);
  template <class Stream, class Request>
  asio::awaitable<attempt_end> send_with_body(Stream& stream, beast::tcp_stream& tcp, Request& req,
                                              std::uint64_t begin, std::uint64_t end, const std::string& where,
                                              string_response& out, sha256* hash, bool track);
  template <class Stream>
  asio::awaitable<attempt_end> read_response(Stream& stream, beast::tcp_stream& tcp, const std::string& where,
                                             string_response& out, bool head = false);
  // impl/put.ipp
  asio::awaitable<attempt_end> put_attempt(std::string& digest);
  // impl/tus.ipp
  asio::awaitable<attempt_end> tus_attempt();
  asio::awaitable<attempt_end> tus_call(http::verb verb, const net::endpoint_url& url, header_list fields,
                                        string_response& res, std::uint64_t body_begin = 0,
                                        std::uint64_t body_end = 0);
  asio::awaitable<attempt_end> probe();
  asio::awaitable<attempt_end> find_offset(const net::endpoint_url& create);
  error_code forget_upload(const std::string& why);

  run_context& cx_;
  file source_;
  std::vector<char> buf_ = std::vector<char>(io_chunk);
  // tus: what the server offers (asked once per run with OPTIONS)
  bool probed_ = false;
  tus_capabilities caps_;
  // Checkpoint-chunk digests of the bytes as they were sent (tus), so that acknowledging them
  // needs no second read of the source: `sent_digests_[k]` is chunk `sent_first_ + k`.
  bool tracking_ = false;
  std::uint64_t sent_first_ = 0, sent_pos_ = 0;
  std::vector<std::string> sent_digests_;
  hasher sent_hash_;
};

/// The attempt's failure for a status the protocol does not expect.
TETHER_DECL attempt_end status_failure(attempt_end end, const std::string& where, const string_response& res);

}  // namespace tether::transfer::detail
