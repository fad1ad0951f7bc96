# Homebrew formula for ollmlx: `brew install ollmlx/tap/ollmlx` once it is in a tap, or
# `brew install --formula ./packaging/homebrew/ollmlx.rb` from a checkout.
#
# It builds from the tagged source with Rust rather than repackaging a release archive:
# homebrew-core accepts only source builds (bottles then give users a prebuilt binary anyway),
# one source tarball serves both macOS architectures and Linuxbrew, and the binary links against
# Homebrew's own environment. The release workflow fills in `url` and `sha256` for each tag
# (scripts/homebrew-formula.sh) and attaches the result to the release as ollmlx.rb.
class Ollmlx < Formula
  desc "Drop-in replacement for Ollama that runs MLX models natively beside GGUF models"
  homepage "https://github.com/ollmlx/ollmlx"
  url "https://github.com/ollmlx/ollmlx/archive/refs/tags/v0.1.0.tar.gz"
  sha256 "0000000000000000000000000000000000000000000000000000000000000000"
  license "MIT"
  head "https://github.com/ollmlx/ollmlx.git", branch: "main"

  depends_on "rust" => :build
  # GGUF models run through llama.cpp's llama-server, found on PATH.
  depends_on "llama.cpp"
  # MLX models run in a Python runner; ollmlx makes its own venv with mlx-lm from this Python.
  depends_on "python@3.12"

  def install
    system "cargo", "install", *std_cargo_args
    # Completions and man pages come from the clap definition, so they match this build.
    generate_completions_from_executable(bin/"ollmlx", "completions")
    system bin/"ollmlx", "man", man1
  end

  def caveats
    <<~EOS
      The first MLX request installs mlx-lm into ~/.ollmlx/runtime (once); GGUF models use
      llama.cpp's llama-server. To start ollmlx now and at login:
        brew services start ollmlx
    EOS
  end

  service do
    run [opt_bin/"ollmlx", "serve"]
    keep_alive true
    working_dir var
    log_path var/"log/ollmlx.log"
    error_log_path var/"log/ollmlx.log"
    # llama-server and python3.12 are found through PATH.
    environment_variables OLLAMA_HOST: "127.0.0.1:11434", PATH: std_service_path_env
  end

  test do
    assert_match "serve", shell_output("#{bin}/ollmlx --help")
    assert_match ".TH ollmlx 1", (man1/"ollmlx.1").read

    port = free_port
    ENV["OLLAMA_HOST"] = "127.0.0.1:#{port}"
    ENV["OLLAMA_MODELS"] = (testpath/"models").to_s
    ENV["OLLMLX_HOME"] = (testpath/"ollmlx").to_s
    ENV["HF_HOME"] = (testpath/"hf").to_s
    pid = spawn bin/"ollmlx", "serve"
    begin
      # The daemon answers once it has bound the port; give it up to 30 s.
      url = "http://127.0.0.1:#{port}/api/version"
      up = false
      60.times do
        break if (up = quiet_system("curl", "-fsS", "-o", testpath/"version.json", url))

        sleep 0.5
      end
      assert up, "ollmlx serve did not answer #{url}"
      assert_match(/"version":"\d+\.\d+\.\d+"/, (testpath/"version.json").read)
    ensure
      Process.kill("TERM", pid)
      Process.wait(pid)
    end
  end
end
