using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Qwen3.Net.Loading;

namespace Qwen3.Net.Hub;

/// <summary>
/// One <see cref="HuggingFaceHub.DownloadAsync"/> call: resolves the revision, picks the files, and downloads the missing
/// ones into the cache with the protocol <c>huggingface_hub</c> speaks (<c>GET /api/models/{repo}/revision/{rev}</c>
/// for the file list, <c>HEAD /{repo}/resolve/{commit}/{file}</c> for the ETag and size, then <c>GET</c> with a range).
/// </summary>
internal sealed class HubDownload(HubModelId id, HubOptions options, IProgress<DownloadProgress>? progress, HttpClient http)
{
    private const int MaxRedirects = 10;
    private const long MaxApiResponseBytes = 32L << 20;
    private const long ProgressStepBytes = 256 << 10;

    private readonly HubCache _cache = new(options.ResolveCacheDirectory(), id.Repository);
    private readonly string _endpoint = options.ResolveEndpoint();
    private readonly string? _token = options.ResolveToken();
    private long _bytes;
    private long _totalBytes;

    public async Task<string> RunAsync(CancellationToken cancellationToken)
    {
        string? cachedCommit = _cache.CachedCommit(id.Revision);
        string? cached = cachedCommit is null ? null : ModelFiles.SelectCached(_cache.SnapshotFolder(cachedCommit), id.FileSelector, id.Text);
        bool offline = options.ResolveOffline();
        if (cached is not null && (offline || !options.CheckForUpdates))
        {
            return cached;
        }

        if (offline)
        {
            throw new HubException(
                HubErrorKind.NotCached,
                $"'{id.Text}' is not in the cache ({_cache.RepositoryFolder}) and offline mode is on (HF_HUB_OFFLINE or HubOptions.Offline): download it once with the network on, for example `qwen3 download {id.Text}`.",
                id.Text);
        }

        RevisionInfo info;
        try
        {
            info = await GetRevisionInfoAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (HubException e) when (e.Kind == HubErrorKind.Network)
        {
            // Like huggingface_hub: an unreachable hub falls back to what the cache has.
            return cached ?? throw new HubException(
                HubErrorKind.NotCached,
                $"Cannot reach the hub at {_endpoint} ({e.Message}) and '{id.Text}' is not in the cache ({_cache.RepositoryFolder}). Check the network (or HF_ENDPOINT), or copy the model into the cache and set HF_HUB_OFFLINE=1.",
                id.Text,
                inner: e);
        }

        string snapshot = _cache.SnapshotFolder(info.Commit);
        string result;
        if (ModelFiles.IsGguf(info.Files, id.FileSelector))
        {
            string file = ModelFiles.ChooseGguf(info.Files, id.FileSelector, id.Text);
            await FetchAsync([file], info.Commit, cancellationToken).ConfigureAwait(false);
            result = Path.Combine(snapshot, file);
        }
        else
        {
            var first = new List<string> { Require(info, ModelFiles.Config), Require(info, ModelFiles.Tokenizer) };
            first.AddRange(ModelFiles.Optional.Where(info.Files.Contains));
            bool sharded = info.Files.Contains(ModelFiles.Index);
            if (sharded)
            {
                first.Add(ModelFiles.Index);
            }
            else if (!info.Files.Contains(ModelFiles.SingleWeights))
            {
                throw new HubException(
                    HubErrorKind.FileNotFound,
                    $"'{id.Text}' has neither {ModelFiles.SingleWeights} nor {ModelFiles.Index}: it is not a safetensors model; for a GGUF repository name the file or quantization (org/name:Q4_K_M).",
                    id.Text,
                    ModelFiles.SingleWeights);
            }

            await FetchAsync(first, info.Commit, cancellationToken).ConfigureAwait(false);
            var weights = sharded
                ? ModelFiles.ReadShards(Path.Combine(snapshot, ModelFiles.Index), id.Text).Select(shard => Require(info, shard)).ToList()
                : [ModelFiles.SingleWeights];
            await FetchAsync(weights, info.Commit, cancellationToken).ConfigureAwait(false);
            result = snapshot;
        }

        _cache.WriteRef(id.Revision, info.Commit);
        return result;
    }

    private string Require(RevisionInfo info, string file) =>
        info.Files.Contains(file)
            ? file
            : throw new HubException(HubErrorKind.FileNotFound, $"'{id.Text}' has no {file} at commit {info.Commit}: it is not a complete Qwen3 model repository.", id.Text, file);

    /// <summary>Links the files cached already, checks the disk has room for the rest, then downloads them in parallel.</summary>
    private async Task FetchAsync(IReadOnlyList<string> files, string commit, CancellationToken cancellationToken)
    {
        var pending = new List<(string File, FileMetadata Metadata)>();
        foreach (string file in files)
        {
            if (File.Exists(Path.Combine(_cache.SnapshotFolder(commit), file)))
            {
                continue;
            }

            var metadata = await HeadAsync(file, commit, cancellationToken).ConfigureAwait(false);
            if (File.Exists(_cache.BlobPath(metadata.ETag)))
            {
                _cache.LinkSnapshotFile(commit, file, metadata.ETag);
            }
            else
            {
                pending.Add((file, metadata));
            }
        }

        if (pending.Count == 0)
        {
            return;
        }

        CheckDiskSpace(pending);
        Interlocked.Add(ref _totalBytes, pending.Sum(p => p.Metadata.Size));
        await Parallel.ForEachAsync(
            pending,
            new ParallelOptions { MaxDegreeOfParallelism = options.MaxParallelDownloads, CancellationToken = cancellationToken },
            async (item, ct) =>
            {
                await DownloadBlobAsync(item.File, item.Metadata, ct).ConfigureAwait(false);
                _cache.LinkSnapshotFile(commit, item.File, item.Metadata.ETag);
            }).ConfigureAwait(false);
    }

    private void CheckDiskSpace(List<(string File, FileMetadata Metadata)> pending)
    {
        string blobs = Path.GetDirectoryName(_cache.BlobPath("x"))!;
        Directory.CreateDirectory(blobs);
        long needed = pending.Sum(p =>
        {
            var partial = new FileInfo(_cache.BlobPath(p.Metadata.ETag) + ".incomplete");
            return p.Metadata.Size - (partial.Exists ? Math.Min(partial.Length, p.Metadata.Size) : 0);
        });
        long available = options.AvailableDiskSpace ?? new DriveInfo(blobs).AvailableFreeSpace;
        if (needed > available)
        {
            throw new HubException(
                HubErrorKind.InsufficientDiskSpace,
                $"'{id.Text}' needs {FormatBytes(needed)} more but only {FormatBytes(available)} is free at {blobs}; nothing was downloaded. Free some space or point HF_HUB_CACHE at a larger disk.",
                id.Text,
                pending[0].File);
        }
    }

    private async Task<RevisionInfo> GetRevisionInfoAsync(CancellationToken cancellationToken)
    {
        var url = new Uri($"{_endpoint}/api/models/{id.Repository}/revision/{Uri.EscapeDataString(id.Revision)}");
        return await WithRetriesAsync(null, async ct =>
        {
            using var response = await SendAsync(HttpMethod.Get, url, null, followAbsoluteRedirects: false, ct).ConfigureAwait(false);
            if (!response.IsSuccessStatusCode)
            {
                throw ErrorFor(response, null);
            }

            using var body = new MemoryStream();
            await CopyBoundedAsync(response, body, MaxApiResponseBytes, ct).ConfigureAwait(false);
            return ParseRevisionInfo(body.ToArray());
        }, cancellationToken).ConfigureAwait(false);
    }

    private RevisionInfo ParseRevisionInfo(byte[] json)
    {
        try
        {
            using var document = JsonDocument.Parse(json, new JsonDocumentOptions { MaxDepth = 32 });
            var root = document.RootElement;
            string? commit = root.ValueKind == JsonValueKind.Object && root.TryGetProperty("sha", out var sha) && sha.ValueKind == JsonValueKind.String ? sha.GetString() : null;
            if (commit is null || !HubModelId.IsCommitHash(commit))
            {
                throw Invalid("its model info has no 40-digit commit hash in \"sha\"");
            }

            var files = new HashSet<string>(StringComparer.Ordinal);
            if (root.TryGetProperty("siblings", out var siblings) && siblings.ValueKind == JsonValueKind.Array)
            {
                foreach (var sibling in siblings.EnumerateArray())
                {
                    // Names that are not plain relative paths could climb out of the cache; the model never needs them.
                    if (sibling.ValueKind == JsonValueKind.Object
                        && sibling.TryGetProperty("rfilename", out var name)
                        && name.ValueKind == JsonValueKind.String
                        && HubModelId.IsSafeRelativePath(name.GetString()!))
                    {
                        files.Add(name.GetString()!);
                    }
                }
            }

            return new RevisionInfo(commit, files);
        }
        catch (JsonException e)
        {
            throw Invalid($"its model info is not valid JSON ({e.Message})", e);
        }
    }

    private async Task<FileMetadata> HeadAsync(string file, string commit, CancellationToken cancellationToken)
    {
        var url = ResolveUrl(file, commit);
        return await WithRetriesAsync(file, async ct =>
        {
            // Relative redirects (a renamed repository) are followed; the absolute one to the file storage carries the
            // X-Linked-* headers and is where the bytes come from.
            using var response = await SendAsync(HttpMethod.Head, url, null, followAbsoluteRedirects: false, ct).ConfigureAwait(false);
            int status = (int)response.StatusCode;
            if (status is < 200 or >= 400)
            {
                throw ErrorFor(response, file);
            }

            string? etag = Header(response, "X-Linked-Etag") ?? response.Headers.ETag?.Tag ?? Header(response, "ETag");
            etag = etag?.Trim();
            if (etag is not null && etag.StartsWith("W/", StringComparison.Ordinal))
            {
                etag = etag[2..];
            }

            etag = etag?.Trim('"');
            if (etag is null || !(etag.Length is 40 or 64) || !etag.All(char.IsAsciiHexDigitLower))
            {
                throw Invalid($"its answer for {file} has no SHA-1 or SHA-256 ETag (got '{etag}')", file: file);
            }

            string? sizeText = Header(response, "X-Linked-Size") ?? response.Content.Headers.ContentLength?.ToString(System.Globalization.CultureInfo.InvariantCulture);
            if (!long.TryParse(sizeText, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out long size))
            {
                throw Invalid($"its answer for {file} has no size (X-Linked-Size or Content-Length)", file: file);
            }

            var location = status >= 300 && response.Headers.Location is { } redirect ? new Uri(url, redirect) : url;
            return new FileMetadata(etag, size, location);
        }, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Downloads one blob under its lock, resuming a partial file, and moves it into place once its hash matches.</summary>
    private async Task DownloadBlobAsync(string file, FileMetadata metadata, CancellationToken cancellationToken)
    {
        using var blobLock = await AcquireLockAsync(_cache.LockPath(metadata.ETag), cancellationToken).ConfigureAwait(false);
        string blob = _cache.BlobPath(metadata.ETag);
        if (File.Exists(blob))
        {
            // Another process downloaded it while this one waited for the lock.
            Report(file, metadata.Size, metadata.Size, metadata.Size);
            return;
        }

        string partial = blob + ".incomplete";
        byte[] hash = await WithRetriesAsync(file, ct => DownloadAttemptAsync(file, metadata, partial, ct), cancellationToken).ConfigureAwait(false);
        string actual = Convert.ToHexStringLower(hash);
        if (actual != metadata.ETag)
        {
            File.Delete(partial);
            throw new HubException(
                HubErrorKind.HashMismatch,
                $"{file} of '{id.Text}' is corrupt: its {(metadata.ETag.Length == 64 ? "SHA-256" : "git SHA-1")} is {actual} but the hub's ETag is {metadata.ETag}. The file was removed; run again to download it anew.",
                id.Text,
                file);
        }

        File.Move(partial, blob, overwrite: true);
    }

    /// <summary>One attempt: hashes the bytes already present, asks for the rest with a range, appends them; returns the hash.</summary>
    private async Task<byte[]> DownloadAttemptAsync(string file, FileMetadata metadata, string partial, CancellationToken cancellationToken)
    {
        await using var stream = new FileStream(partial, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None, PageCache.WriteBufferBytes, useAsync: true);
        using var hash = metadata.ETag.Length == 64 ? IncrementalHash.CreateHash(HashAlgorithmName.SHA256) : IncrementalHash.CreateHash(HashAlgorithmName.SHA1);
        long have = stream.Length;
        if (have > metadata.Size)
        {
            stream.SetLength(0);
            have = 0;
        }

        StartHash(hash, metadata);
        byte[] buffer = new byte[1 << 20];
        for (long read = 0; read < have;)
        {
            int n = await stream.ReadAsync(buffer.AsMemory(0, (int)Math.Min(buffer.Length, have - read)), cancellationToken).ConfigureAwait(false);
            if (n == 0)
            {
                break;
            }

            hash.AppendData(buffer, 0, n);
            read += n;
        }

        Interlocked.Add(ref _bytes, have);
        if (have == metadata.Size)
        {
            Report(file, have, metadata.Size, 0);
            return hash.GetHashAndReset();
        }

        using var response = await SendAsync(HttpMethod.Get, metadata.Location, have > 0 ? have : null, followAbsoluteRedirects: true, cancellationToken).ConfigureAwait(false);
        if (response.StatusCode == HttpStatusCode.OK && have > 0)
        {
            // The server ignored the range: start over.
            Interlocked.Add(ref _bytes, -have);
            stream.SetLength(0);
            have = 0;
            hash.GetHashAndReset();
            StartHash(hash, metadata);
        }
        else if (response.StatusCode == HttpStatusCode.PartialContent)
        {
            if (response.Content.Headers.ContentRange?.From != have)
            {
                Interlocked.Add(ref _bytes, -have);
                stream.SetLength(0);
                throw new TransientHubException($"the server answered range bytes={have}- with {response.Content.Headers.ContentRange}");
            }
        }
        else if (!response.IsSuccessStatusCode)
        {
            Interlocked.Add(ref _bytes, -have);
            if (response.StatusCode == HttpStatusCode.RequestedRangeNotSatisfiable)
            {
                stream.SetLength(0);
                throw new TransientHubException($"the server refused range bytes={have}-");
            }

            throw ErrorFor(response, file);
        }

        stream.Position = have;
        long start = have;
        try
        {
            using var idle = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            await using var body = await response.Content.ReadAsStreamAsync(idle.Token).ConfigureAwait(false);
            long reported = have;
            while (true)
            {
                idle.CancelAfter(options.ReadTimeout);
                int n;
                try
                {
                    n = await body.ReadAsync(buffer, idle.Token).ConfigureAwait(false);
                }
                catch (IOException e)
                {
                    throw new TransientHubException($"the connection broke after {have} of {metadata.Size} bytes of {file} ({e.Message})", e);
                }

                if (n == 0)
                {
                    break;
                }

                if (have + n > metadata.Size)
                {
                    stream.SetLength(0);
                    throw new HubException(HubErrorKind.HashMismatch, $"{file} of '{id.Text}': the server sent more than the {metadata.Size} bytes the hub announced; the partial file was removed.", id.Text, file);
                }

                hash.AppendData(buffer, 0, n);
                await stream.WriteAsync(buffer.AsMemory(0, n), cancellationToken).ConfigureAwait(false);
                have += n;
                Interlocked.Add(ref _bytes, n);
                if (have - reported >= ProgressStepBytes || have == metadata.Size)
                {
                    Report(file, have, metadata.Size, 0);
                    reported = have;
                }
            }
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            Interlocked.Add(ref _bytes, -have);
            throw new TransientHubException($"no data for {options.ReadTimeout.TotalSeconds:0} s after {have} of {metadata.Size} bytes of {file}");
        }
        catch
        {
            // The bytes stay on disk for the retry, which counts them again.
            Interlocked.Add(ref _bytes, -have);
            throw;
        }
        finally
        {
            await stream.FlushAsync(CancellationToken.None).ConfigureAwait(false);
        }

        if (have < metadata.Size)
        {
            Interlocked.Add(ref _bytes, -have);
            throw new TransientHubException($"the connection closed after {have} of {metadata.Size} bytes of {file} (this attempt sent {have - start})");
        }

        return hash.GetHashAndReset();
    }

    // A git blob's SHA-1 (the ETag of files not stored in LFS) covers a "blob {size}\0" header before the bytes.
    private static void StartHash(IncrementalHash hash, FileMetadata metadata)
    {
        if (metadata.ETag.Length == 40)
        {
            hash.AppendData(Encoding.ASCII.GetBytes($"blob {metadata.Size}\0"));
        }
    }

    private void Report(string file, long fileBytes, long fileSize, long extra)
    {
        long bytes = Interlocked.Add(ref _bytes, extra);
        progress?.Report(new DownloadProgress(file, fileBytes, fileSize, bytes, Interlocked.Read(ref _totalBytes)));
    }

    /// <summary>
    /// Takes the blob's lock file, waiting while another process (or call) holds it: .NET's exclusive open is an
    /// advisory <c>flock</c> on Unix, the same lock Python's <c>filelock</c> takes, and it is released if the holder dies.
    /// </summary>
    private static async Task<FileStream> AcquireLockAsync(string path, CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        while (true)
        {
            try
            {
                return new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            }
            catch (IOException) when (File.Exists(path))
            {
                await Task.Delay(TimeSpan.FromMilliseconds(100), cancellationToken).ConfigureAwait(false);
            }
        }
    }

    /// <summary>Runs an attempt, retrying transient failures with exponential backoff (see <see cref="HubOptions.MaxRetries"/>).</summary>
    private async Task<T> WithRetriesAsync<T>(string? file, Func<CancellationToken, Task<T>> attempt, CancellationToken cancellationToken)
    {
        for (int failures = 0; ; failures++)
        {
            try
            {
                return await attempt(cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (IsTransient(e, cancellationToken))
            {
                if (failures >= options.MaxRetries)
                {
                    throw new HubException(
                        HubErrorKind.Network,
                        $"{(file ?? "The model info")} of '{id.Text}' could not be fetched from {_endpoint} after {failures + 1} attempts: {e.Message}",
                        id.Text,
                        file,
                        inner: e);
                }

                // Jitter spreads the retries of parallel downloads apart.
                double delay = options.RetryBaseDelay.TotalMilliseconds * Math.Pow(2, failures) * (0.75 + 0.5 * Random.Shared.NextDouble());
                await Task.Delay(TimeSpan.FromMilliseconds(Math.Min(delay, 30_000)), cancellationToken).ConfigureAwait(false);
            }
        }
    }

    private static bool IsTransient(Exception e, CancellationToken cancellationToken) =>
        e is TransientHubException or HttpRequestException || (e is OperationCanceledException && !cancellationToken.IsCancellationRequested);

    /// <summary>Sends a request, following redirects by hand; the token goes to the hub's own host only.</summary>
    private async Task<HttpResponseMessage> SendAsync(HttpMethod method, Uri url, long? rangeStart, bool followAbsoluteRedirects, CancellationToken cancellationToken)
    {
        var endpoint = new Uri(_endpoint);
        for (int hop = 0; hop <= MaxRedirects; hop++)
        {
            using var request = new HttpRequestMessage(method, url);
            request.Headers.UserAgent.Add(new ProductInfoHeaderValue("Qwen3.Net", typeof(HubDownload).Assembly.GetName().Version?.ToString(3) ?? "0"));
            request.Headers.AcceptEncoding.Add(new StringWithQualityHeaderValue("identity"));
            if (_token is not null && Uri.Compare(url, endpoint, UriComponents.SchemeAndServer, UriFormat.Unescaped, StringComparison.OrdinalIgnoreCase) == 0)
            {
                request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", _token);
            }

            if (rangeStart is { } from)
            {
                request.Headers.Range = new RangeHeaderValue(from, null);
            }

            var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
            int status = (int)response.StatusCode;
            if (status is 301 or 302 or 303 or 307 or 308 && response.Headers.Location is { } location && (!location.IsAbsoluteUri || followAbsoluteRedirects))
            {
                url = new Uri(url, location);
                response.Dispose();
                continue;
            }

            if (status is 408 or 429 or >= 500)
            {
                response.Dispose();
                throw new TransientHubException($"HTTP {status} from {url.GetLeftPart(UriPartial.Path)}");
            }

            return response;
        }

        throw Invalid($"more than {MaxRedirects} redirects from {url.GetLeftPart(UriPartial.Path)}");
    }

    /// <summary>The exception for a hub error status, read the way huggingface_hub reads it (the X-Error-Code header first).</summary>
    private HubException ErrorFor(HttpResponseMessage response, string? file)
    {
        int status = (int)response.StatusCode;
        string? code = Header(response, "X-Error-Code");
        string? detail = Header(response, "X-Error-Message");
        string suffix = detail is null ? "" : $" (the hub says: {detail})";
        string repoUrl = $"{_endpoint}/{id.Repository}";
        if (code == "GatedRepo" || (status == 403 && code is null or "GatedRepo"))
        {
            string how = _token is null
                ? $"open {repoUrl}, log in and accept its conditions, then create a read token at {_endpoint}/settings/tokens and set HF_TOKEN (or run `hf auth login`)"
                : $"the token in use has no access yet: open {repoUrl} with that account and accept its conditions (access may need the authors' approval), or use a token of an account that has access";
            return new HubException(HubErrorKind.AccessDenied, $"'{id.Repository}' is a gated repository (HTTP {status}): {how}.{suffix}", id.Text, file, status);
        }

        if (code == "RevisionNotFound")
        {
            return new HubException(HubErrorKind.RevisionNotFound, $"'{id.Repository}' has no revision '{id.Revision}' (HTTP {status}): check the branch, tag or commit after '@'.{suffix}", id.Text, file, status);
        }

        if (code == "EntryNotFound" || (status == 404 && file is not null && code is null))
        {
            return new HubException(HubErrorKind.FileNotFound, $"'{id.Repository}' has no file {file} at revision '{id.Revision}' (HTTP {status}).{suffix}", id.Text, file, status);
        }

        if (status == 401 || (status == 403 && code is not null))
        {
            string how = _token is null
                ? "if it is private or gated, create a read token at " + _endpoint + "/settings/tokens and set HF_TOKEN (or run `hf auth login`); otherwise check the id"
                : "the token was refused or cannot see it: check the id, and that the token (HF_TOKEN or the token file) is valid and has access";
            return new HubException(HubErrorKind.AccessDenied, $"'{id.Repository}' on {_endpoint} needs authentication or does not exist (HTTP {status}): {how}.{suffix}", id.Text, file, status);
        }

        if (status == 404 || code == "RepoNotFound")
        {
            return new HubException(HubErrorKind.RepositoryNotFound, $"'{id.Repository}' was not found on {_endpoint} (HTTP {status}): check the id (org/name, as on {repoUrl}).{suffix}", id.Text, file, status);
        }

        return new HubException(HubErrorKind.InvalidResponse, $"{file ?? "The model info"} of '{id.Text}': the hub answered HTTP {status}.{suffix}", id.Text, file, status);
    }

    private HubException Invalid(string message, Exception? inner = null, string? file = null) =>
        new(HubErrorKind.InvalidResponse, $"The hub at {_endpoint} answered unexpectedly for '{id.Text}': {message}.", id.Text, file, inner: inner);

    private Uri ResolveUrl(string file, string commit) =>
        new($"{_endpoint}/{id.Repository}/resolve/{commit}/{string.Join('/', file.Split('/').Select(Uri.EscapeDataString))}");

    private static async Task CopyBoundedAsync(HttpResponseMessage response, Stream destination, long limit, CancellationToken cancellationToken)
    {
        await using var body = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
        byte[] buffer = new byte[81920];
        try
        {
            for (int n; (n = await body.ReadAsync(buffer, cancellationToken).ConfigureAwait(false)) > 0;)
            {
                if (destination.Length + n > limit)
                {
                    throw new TransientHubException($"the model info is larger than {limit} bytes");
                }

                destination.Write(buffer, 0, n);
            }
        }
        catch (IOException e)
        {
            throw new TransientHubException($"the connection broke while reading the model info ({e.Message})", e);
        }
    }

    private static string? Header(HttpResponseMessage response, string name) =>
        response.Headers.TryGetValues(name, out var values) || response.Content.Headers.TryGetValues(name, out values) ? values.FirstOrDefault() : null;

    internal static string FormatBytes(long bytes) => bytes switch
    {
        >= 1L << 30 => $"{bytes / (double)(1L << 30):0.0} GiB",
        >= 1L << 20 => $"{bytes / (double)(1L << 20):0.0} MiB",
        >= 1L << 10 => $"{bytes / 1024.0:0.0} KiB",
        _ => $"{bytes} B",
    };

    private sealed record RevisionInfo(string Commit, HashSet<string> Files);

    private sealed record FileMetadata(string ETag, long Size, Uri Location);

    /// <summary>A failure worth retrying: the connection, a timeout, or HTTP 408, 429 or 5xx.</summary>
    private sealed class TransientHubException(string message, Exception? inner = null) : Exception(message, inner);
}
