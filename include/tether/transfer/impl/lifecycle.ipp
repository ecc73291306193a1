// tether/transfer/impl/lifecycle.ipp: attach and settle decisions (no I/O).
#pragma once

#include <tether/transfer/detail/lifecycle.hpp>

#include <boost/asio/error.hpp>

namespace tether::transfer::detail {

attach_decision decide_attach(const record& fresh, const attach_facts& f) {
  attach_decision d;
  auto refuse = [&](error e, std::string why) {
    d.action = attach_action::refuse;
    d.e = e;
    d.why = std::move(why);
    return d;
  };
  if (!f.existing) {
    d.action = attach_action::create;
    return d;
  }
  const auto& r = *f.existing;
  if (r.kind != fresh.kind || r.url != fresh.url || r.file != fresh.file)
    return refuse(error::invalid_argument, "the id " + fresh.id + " already names a transfer of another URL or file");
  if (f.active) {
    d.action = attach_action::join;
    return d;
  }
  if (!r.result) {
    d.action = attach_action::resume;
    return d;
  }
  if (r.status == status::succeeded) {
    // An upload's success lives on the server; a download's in a file that may have gone.
    const bool intact = r.kind == kind::upload || (f.destination && r.produced && *f.destination == *r.produced);
    d.action = intact ? attach_action::replay : attach_action::rerun;
    d.keep_progress = false;
    return d;
  }
  // Failed or cancelled: the caller asks again, so run again, keeping what is provably good.
  d.action = attach_action::rerun;
  d.keep_progress = r.status == status::failed;
  return d;
}

settlement settle(stop_kind stop, const result& res) {
  settlement s;
  switch (stop) {
    case stop_kind::cancel:
      s.outcome = net::outcome::failed;
      s.error = make_error_code(error::cancelled);
      s.message = "cancelled";
      s.status = status::cancelled;
      s.final = true;
      s.discard_partial = true;  // cancel is the caller's "never mind": the space goes back
      return s;
    case stop_kind::pause:
      s.outcome = net::outcome::retry_later;
      s.error = make_error_code(error::paused);
      s.message = "paused";
      s.status = status::paused;
      return s;
    case stop_kind::remove:
    case stop_kind::shutdown:
      s.outcome = net::outcome::retry_later;
      s.error = boost::asio::error::operation_aborted;
      s.message = stop == stop_kind::remove ? "removed" : "the transfer manager shut down";
      s.status = status::waiting;
      return s;
    case stop_kind::none: break;
  }
  if (res.outcome == net::outcome::retry_later) {
    s.status = status::waiting;
    return s;
  }
  s.final = true;
  s.status = res.outcome == net::outcome::success ? status::succeeded : status::failed;
  // Nothing durable, or proven wrong: nothing a rerun could continue.
  s.discard_partial = res.error == error::integrity_mismatch || res.bytes_on_disk == 0;
  return s;
}

}  // namespace tether::transfer::detail
