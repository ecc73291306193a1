// tether/transfer/impl/src_core.hpp: tether::transfer's files, records, decisions and manager.
#pragma once

// These definitions are compiled in exactly one translation unit (src/ or the application's one
// <tether/src.hpp>), so GCC's warning about coroutine frames and helpers that hold lambda types
// (types without linkage) in a header cannot point at an ODR problem here.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wsubobject-linkage"
#endif

#include <tether/transfer/impl/file.ipp>
#include <tether/transfer/impl/record.ipp>
#include <tether/transfer/impl/store.ipp>
#include <tether/transfer/impl/download_plan.ipp>
#include <tether/transfer/impl/retry_fsm.ipp>
#include <tether/transfer/impl/tus_plan.ipp>
#include <tether/transfer/impl/lifecycle.ipp>
#include <tether/transfer/impl/run_context.ipp>
#include <tether/transfer/impl/connection.ipp>
#include <tether/transfer/impl/scheduler.ipp>
#include <tether/transfer/impl/manager.ipp>

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
