using System.Buffers.Binary;
using System.IO.Compression;
using Microsoft.Extensions.Logging;
using Vae.ML.Datasets;

namespace Vae.ML.Tests.Datasets;

/// <summary>A directory under the system temp folder, deleted on dispose.</summary>
public sealed class TempDirectory : IDisposable
{
    public TempDirectory()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "vae-ml-tests-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public string File(string name) => System.IO.Path.Combine(Path, name);

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

/// <summary>Writes small IDX files the way the MNIST files are laid out.</summary>
internal static class IdxTestFiles
{
    public static byte[] Images(int magic, int count, int rows, int columns, byte[] pixels)
        => Build(magic, [count, rows, columns], pixels);

    public static byte[] Labels(int magic, byte[] labels) => Build(magic, [labels.Length], labels);

    public static byte[] Build(int magic, int[] dimensions, byte[] data)
    {
        var bytes = new byte[4 + 4 * dimensions.Length + data.Length];
        BinaryPrimitives.WriteInt32BigEndian(bytes, magic);
        for (int i = 0; i < dimensions.Length; i++)
        {
            BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(4 + 4 * i), dimensions[i]);
        }

        data.CopyTo(bytes, 4 + 4 * dimensions.Length);
        return bytes;
    }

    public static byte[] Gzip(byte[] content)
    {
        using var buffer = new MemoryStream();
        using (var gzip = new GZipStream(buffer, CompressionLevel.Fastest, leaveOpen: true))
        {
            gzip.Write(content);
        }

        return buffer.ToArray();
    }
}

/// <summary>Collects log lines so tests can check what was logged.</summary>
public sealed class ListLogger : ILogger
{
    private readonly List<string> _lines = [];

    public IReadOnlyList<string> Lines
    {
        get
        {
            lock (_lines)
            {
                return _lines.ToArray();
            }
        }
    }

    public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => true;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        lock (_lines)
        {
            _lines.Add($"{logLevel}: {formatter(state, exception)}");
        }
    }
}

/// <summary>Serves files from a directory, as a download source would.</summary>
internal sealed class DirectoryCopySource(string directory) : IMnistSource
{
    public int Calls { get; private set; }

    public string Name => $"copy of '{directory}'";

    public void Fetch(MnistFileStore store, CancellationToken cancellationToken)
    {
        Calls++;
        foreach (var file in store.Missing.ToArray())
        {
            using var stream = File.OpenRead(Path.Combine(directory, file.Name));
            store.TryPlace(file, stream, Name);
        }
    }
}

/// <summary>A source that always fails, as an unreachable mirror does.</summary>
internal sealed class FailingSource(string name, string reason) : IMnistSource
{
    public int Calls { get; private set; }

    public string Name => name;

    public void Fetch(MnistFileStore store, CancellationToken cancellationToken)
    {
        Calls++;
        throw new IOException(reason);
    }
}

/// <summary>
/// Stands in for the network under <see cref="HttpMirrorSource"/>: answers each request with <paramref name="respond"/>
/// and counts the requests. HttpClient.Send is synchronous, so the synchronous Send is the one that matters.
/// </summary>
internal sealed class FakeHttpHandler(Func<HttpRequestMessage, CancellationToken, HttpResponseMessage> respond) : HttpMessageHandler
{
    private int _requests;

    public int Requests => Volatile.Read(ref _requests);

    protected override HttpResponseMessage Send(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref _requests);
        return respond(request, cancellationToken);
    }

    protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        => Task.FromResult(Send(request, cancellationToken));

    /// <summary>A mirror that accepts the request and never answers (a black hole behind a proxy).</summary>
    public static FakeHttpHandler Silent() => new((_, token) =>
    {
        token.WaitHandle.WaitOne(TimeSpan.FromMinutes(1)); // the source cancels long before; the bound only keeps a broken test from hanging
        token.ThrowIfCancellationRequested();
        throw new InvalidOperationException("unreachable");
    });
}
