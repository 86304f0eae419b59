using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Vae.ML.Samples.Bench;

/// <summary>
/// The PyTorch original (pytorch_bench.py: shared/reference/seed_vae.py's model and tensor-fed loop) in a child
/// process, driven one epoch at a time so that its epochs interleave with Vae.ML's; while one side runs, the other
/// waits idle.
/// </summary>
internal sealed class PyTorchContender : IDisposable
{
    /// <summary>The script, copied next to the CLI.</summary>
    public static string ScriptPath => Path.Combine(AppContext.BaseDirectory, "Bench", "pytorch_bench.py");

    private readonly Process _process;
    private readonly string _dataFile;

    private PyTorchContender(Process process, string dataFile, string version, int threads)
    {
        _process = process;
        _dataFile = dataFile;
        TorchVersion = version;
        Threads = threads;
    }

    /// <summary>torch.__version__ of the child.</summary>
    public string TorchVersion { get; }

    /// <summary>Intra-op threads the child runs with.</summary>
    public int Threads { get; }

    /// <summary>
    /// Starts the contender on <paramref name="images"/>' training rows, or returns null with the reason (no python,
    /// no torch, no script) so that the bench can say plainly that it ran without it. By default it is the original
    /// report's MLP; <paramref name="architecture"/> and <paramref name="likelihood"/> give the twin of another
    /// configuration of Vae.ML (the script's <c>--arch</c>, <c>--likelihood</c>).
    /// </summary>
    public static PyTorchContender? TryStart(string python, BenchImages images, int threads, out string? whyNot,
        VaeArchitecture architecture = VaeArchitecture.Mlp, VaeLikelihood likelihood = VaeLikelihood.Bernoulli)
    {
        if (!File.Exists(python))
        {
            whyNot = $"{python} does not exist";
            return null;
        }

        if (!File.Exists(ScriptPath))
        {
            whyNot = $"the contender script {ScriptPath} is missing";
            return null;
        }

        string dataFile = Path.Combine(Path.GetTempPath(), $"vae-ml-bench-{Environment.ProcessId}-{Guid.NewGuid():N}.f32");
        using (FileStream file = File.Create(dataFile))
        {
            file.Write(MemoryMarshal.AsBytes(images.Train.AsSpan()));
        }

        var start = new ProcessStartInfo(python)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        string arch = architecture == VaeArchitecture.Convolutional ? "conv" : "mlp";
        string nll = likelihood == VaeLikelihood.Gaussian ? "gaussian" : "bernoulli";
        foreach (string argument in new[] { ScriptPath, dataFile, images.TrainRows.ToString(), images.Width.ToString(), "--threads", threads.ToString(), "--arch", arch, "--likelihood", nll })
        {
            start.ArgumentList.Add(argument);
        }

        Process? process = null;
        try
        {
            process = Process.Start(start) ?? throw new InvalidOperationException($"Could not start {python}.");
            var errors = new System.Text.StringBuilder();
            process.ErrorDataReceived += (_, e) => { if (e.Data is not null) { lock (errors) { errors.AppendLine(e.Data); } } };
            process.BeginErrorReadLine();
            string? line = process.StandardOutput.ReadLine();
            if (line is null)
            {
                process.WaitForExit();
                string reason;
                lock (errors)
                {
                    reason = errors.ToString().Trim().Split('\n').LastOrDefault() ?? "no output";
                }

                whyNot = $"{python} could not run the contender ({reason})";
                process.Dispose();
                File.Delete(dataFile);
                return null;
            }

            JsonNode ready = JsonNode.Parse(line)!;
            whyNot = null;
            return new PyTorchContender(process, dataFile, (string?)ready["torch"] ?? "unknown", (int?)ready["threads"] ?? threads);
        }
        catch (Exception e) when (e is System.ComponentModel.Win32Exception or JsonException or InvalidOperationException)
        {
            process?.Dispose();
            File.Delete(dataFile);
            whyNot = $"{python} could not run the contender ({e.Message})";
            return null;
        }
    }

    /// <summary>One training epoch over the first <paramref name="rows"/> rows; its own clock, in seconds.</summary>
    public double Epoch(int rows, int batch)
    {
        JsonNode reply = Ask(new JsonObject { ["cmd"] = "epoch", ["rows"] = rows, ["batch"] = batch });
        return (double?)reply["seconds"] ?? throw new InvalidDataException($"The PyTorch contender answered without seconds: {reply.ToJsonString()}");
    }

    /// <summary>Peak resident set of the contender's process so far, in MB.</summary>
    public double PeakRssMegabytes() => (double?)Ask(new JsonObject { ["cmd"] = "peak" })["peak_rss_mb"] ?? double.NaN;

    private JsonNode Ask(JsonObject command)
    {
        _process.StandardInput.WriteLine(command.ToJsonString());
        _process.StandardInput.Flush();
        string line = _process.StandardOutput.ReadLine()
            ?? throw new InvalidDataException($"The PyTorch contender exited (code {(_process.HasExited ? _process.ExitCode : -1)}).");
        JsonNode reply = JsonNode.Parse(line) ?? throw new InvalidDataException($"The PyTorch contender answered '{line}'.");
        if (reply["error"] is JsonNode error)
        {
            throw new InvalidDataException($"The PyTorch contender failed: {error}");
        }

        return reply;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.StandardInput.WriteLine("{\"cmd\": \"quit\"}");
                _process.StandardInput.Flush();
                if (!_process.WaitForExit(TimeSpan.FromSeconds(10)))
                {
                    _process.Kill();
                }
            }
        }
        catch (IOException)
        {
            // It is gone already.
        }
        finally
        {
            _process.Dispose();
            File.Delete(_dataFile);
        }
    }
}
