// Child processes for the tests that run the programs as a user would: stdin from a file or
// a pipe the test holds, stdout and stderr captured in files, every wait bounded.
#pragma once

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <sstream>
#include <string>
#include <vector>

extern char** environ;

namespace tether::test {

inline std::string slurp(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

/// A child process with stdout and stderr in files.
struct child {
  pid_t pid = -1;
  int stdin_fd = -1;  ///< the write end of its stdin when spawned with a pipe

  /// stdin: `in` if given (a file), else /dev/null; with `pipe_stdin`, a pipe the test writes
  /// to through `write_stdin` and ends with `close_stdin`.
  static child spawn(const std::vector<std::string>& args, const std::filesystem::path& out,
                     const std::filesystem::path& err, const std::filesystem::path& in = {}, bool pipe_stdin = false) {
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    int fds[2] = {-1, -1};
    if (pipe_stdin) {
      REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
      posix_spawn_file_actions_adddup2(&fa, fds[0], 0);
    } else {
      posix_spawn_file_actions_addopen(&fa, 0, in.empty() ? "/dev/null" : in.c_str(), O_RDONLY, 0);
    }
    posix_spawn_file_actions_addopen(&fa, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&fa, 2, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    child c;
    const int rc = posix_spawn(&c.pid, argv[0], &fa, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    if (pipe_stdin) {
      ::close(fds[0]);
      c.stdin_fd = fds[1];
    }
    REQUIRE(rc == 0);
    return c;
  }
  void write_stdin(const std::string& s) const {
    REQUIRE(::write(stdin_fd, s.data(), s.size()) == static_cast<ssize_t>(s.size()));
  }
  void close_stdin() {
    if (stdin_fd >= 0) ::close(stdin_fd);
    stdin_fd = -1;
  }
  /// Waits (bounded) for the exit; returns the exit code, or -signal.
  int wait(std::chrono::seconds limit) {
    auto exited = std::async(std::launch::async, [p = pid] {
      int status = 0;
      ::waitpid(p, &status, 0);
      return status;
    });
    if (exited.wait_for(limit) != std::future_status::ready) {
      ::kill(pid, SIGKILL);
      exited.wait();
      close_stdin();
      FAIL("the program did not finish within " << limit.count() << " s");
    }
    close_stdin();
    const int status = exited.get();
    return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
  }
  /// SIGSTOP, and returns once the process is stopped (it reads and writes nothing more).
  void stop() const {
    REQUIRE(::kill(pid, SIGSTOP) == 0);
    int status = 0;
    REQUIRE(::waitpid(pid, &status, WUNTRACED) == pid);
    REQUIRE(WIFSTOPPED(status));
  }
  void kill_now() {
    ::kill(pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
    close_stdin();
  }
};

/// What a finished program left: its exit code, stdout and stderr.
struct ran {
  int code = 0;
  std::string out, err;
};

/// Runs `args` to the end (bounded by `limit`) in `dir`'s files, stdin from `input` text.
inline ran run_program(const std::vector<std::string>& args, const std::filesystem::path& dir, const std::string& input = {},
                       std::chrono::seconds limit = std::chrono::seconds{60}) {
  const auto in = dir / "stdin.txt";
  std::ofstream(in, std::ios::binary) << input;
  auto c = child::spawn(args, dir / "stdout.txt", dir / "stderr.txt", in);
  ran r;
  r.code = c.wait(limit);
  r.out = slurp(dir / "stdout.txt");
  r.err = slurp(dir / "stderr.txt");
  return r;
}

}  // namespace tether::test
