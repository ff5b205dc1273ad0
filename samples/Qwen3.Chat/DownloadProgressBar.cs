using System.Diagnostics;
using System.Globalization;
using Qwen3.Net.Hub;

namespace Qwen3.Chat;

/// <summary>
/// Draws download progress on one console line (bar, sizes, speed, time left), redrawn with a carriage return at most
/// ten times a second; when output is redirected, writes a plain line at every tenth of the way instead.
/// </summary>
/// <param name="output">Where the bar goes.</param>
/// <param name="interactive">True for a terminal (redraw in place), false for a log.</param>
public sealed class DownloadProgressBar(TextWriter output, bool interactive) : IProgress<DownloadProgress>
{
    private const int BarWidth = 30;
    private readonly Lock _gate = new();
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private long? _startBytes;
    private TimeSpan? _lastDraw;
    private int _lastTenth = -1;
    private bool _drawn;

    /// <summary>Draws the progress (called by the downloader, possibly from several threads).</summary>
    /// <param name="value">The bytes so far.</param>
    public void Report(DownloadProgress value)
    {
        lock (_gate)
        {
            _startBytes ??= value.Bytes;
            bool done = value.TotalBytes > 0 && value.Bytes >= value.TotalBytes;
            if (interactive)
            {
                if (!done && _clock.Elapsed - _lastDraw < TimeSpan.FromMilliseconds(100))
                {
                    return;
                }

                output.Write("\r" + Line(value) + "   ");
                _drawn = true;
            }
            else
            {
                int tenth = value.TotalBytes > 0 ? (int)(value.Bytes * 10 / value.TotalBytes) : 0;
                if (tenth == _lastTenth)
                {
                    return;
                }

                _lastTenth = tenth;
                output.WriteLine(Line(value));
            }

            _lastDraw = _clock.Elapsed;
        }
    }

    /// <summary>Ends the bar's line, if one was drawn.</summary>
    public void Finish()
    {
        lock (_gate)
        {
            if (_drawn)
            {
                output.WriteLine();
                _drawn = false;
            }
        }
    }

    /// <summary>The text of one progress line.</summary>
    /// <param name="value">The bytes so far.</param>
    public string Line(DownloadProgress value)
    {
        double fraction = value.TotalBytes > 0 ? Math.Clamp(value.Bytes / (double)value.TotalBytes, 0, 1) : 0;
        int filled = (int)Math.Round(fraction * BarWidth);
        double seconds = _clock.Elapsed.TotalSeconds;
        double speed = seconds > 0 ? (value.Bytes - (_startBytes ?? 0)) / seconds : 0;
        double secondsLeft = speed > 0 ? Math.Ceiling((value.TotalBytes - value.Bytes) / speed) : double.PositiveInfinity;
        string left = fraction >= 1 ? "done"
            : secondsLeft < 100 * 3600 ? string.Create(CultureInfo.InvariantCulture, $"{(int)secondsLeft / 3600:00}:{(int)secondsLeft / 60 % 60:00}:{(int)secondsLeft % 60:00} left")
            : "--:--:-- left";
        return string.Create(CultureInfo.InvariantCulture,
            $"[{new string('#', filled)}{new string('.', BarWidth - filled)}] {fraction * 100,3:0}% {Size(value.Bytes)} / {Size(value.TotalBytes)}  {Size((long)speed)}/s  {left}  {value.FileName}");
    }

    private static string Size(long bytes) => bytes switch
    {
        >= 1L << 30 => string.Create(CultureInfo.InvariantCulture, $"{bytes / (double)(1L << 30):0.00} GiB"),
        >= 1L << 20 => string.Create(CultureInfo.InvariantCulture, $"{bytes / (double)(1L << 20):0.0} MiB"),
        >= 1L << 10 => string.Create(CultureInfo.InvariantCulture, $"{bytes / 1024.0:0.0} KiB"),
        _ => string.Create(CultureInfo.InvariantCulture, $"{bytes} B"),
    };
}
