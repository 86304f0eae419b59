using SkiaSharp;

namespace Vae.ML.Samples.Figures;

/// <summary>
/// The one typeface every figure uses. It is embedded in the assembly because a fresh headless machine
/// (CI containers, minimal Debian) may have no fonts at all; SkiaSharp's NoDependencies build then renders
/// no text, so plots would lose their titles, labels and tick values.
/// </summary>
internal static class FigureFonts
{
    /// <summary>Family name under which ScottPlot finds the embedded font.</summary>
    public const string FamilyName = "DejaVu Sans";

    private const string ResourceName = "Vae.ML.Samples.Fonts.DejaVuSans.ttf";

    private static readonly Lazy<SKTypeface> LazyTypeface = new(LoadEmbedded, LazyThreadSafetyMode.ExecutionAndPublication);
    private static readonly object RegistrationLock = new();
    private static bool registered;

    /// <summary>The embedded DejaVu Sans typeface.</summary>
    public static SKTypeface Typeface => LazyTypeface.Value;

    /// <summary>Makes ScottPlot render all text with the embedded font (idempotent, thread-safe).</summary>
    public static void EnsureRegistered()
    {
        lock (RegistrationLock)
        {
            if (registered)
            {
                return;
            }

            // First in the list so that it wins over whatever the system has (or lacks): figures look the same everywhere.
            ScottPlot.Fonts.FontResolvers.Insert(0, new EmbeddedFontResolver());
            ScottPlot.Fonts.Default = FamilyName;
            registered = true;
        }
    }

    private static SKTypeface LoadEmbedded()
    {
        using Stream stream = typeof(FigureFonts).Assembly.GetManifestResourceStream(ResourceName)
            ?? throw new InvalidOperationException($"Embedded font resource '{ResourceName}' is missing from {typeof(FigureFonts).Assembly.GetName().Name}.");
        using var data = SKData.Create(stream);
        return SKTypeface.FromData(data)
            ?? throw new InvalidOperationException($"Embedded font resource '{ResourceName}' could not be read as a TrueType font.");
    }

    /// <summary>Answers every font request with the embedded typeface (there is one family only).</summary>
    private sealed class EmbeddedFontResolver : ScottPlot.IFontResolver
    {
        public SKTypeface CreateTypeface(string fontName, ScottPlot.FontWeight weight, ScottPlot.FontSlant slant, ScottPlot.FontSpacing spacing) => Typeface;

        public SKTypeface CreateTypeface(string fontName, bool bold, bool italic) => Typeface;
    }
}
