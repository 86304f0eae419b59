using System.Globalization;
using System.Security.Cryptography;

namespace Vae.ML.Samples.Anomaly;

/// <summary>One aspirate: its 30 features and whether it is malignant.</summary>
internal sealed record BreastCancerRow(float[] Features, bool Malignant);

/// <summary>
/// The UCI Breast Cancer Wisconsin (Diagnostic) data shipped with the samples (Data/breast-cancer, CC BY 4.0): 569 rows,
/// 30 features, in scikit-learn's CSV layout, embedded in the assembly and checked against its SHA-256 before use.
/// </summary>
internal static class BreastCancerData
{
    public const int FeatureCount = 30;
    public const int RowCount = 569;
    public const int MalignantCount = 212;

    /// <summary>SHA-256 of Data/breast-cancer/breast_cancer.csv (scikit-learn 1.2.1's copy, as Debian ships it).</summary>
    public const string Sha256 = "fed3eb72d0575ef6192293f5093c6e801b1476b577d0386bf4455504522172ed";

    private const string ResourceName = "Vae.ML.Samples.Data.breast-cancer.breast_cancer.csv";

    /// <summary>The shipped file's bytes (the embedded copy), verified.</summary>
    public static BreastCancerRow[] Load()
    {
        using Stream stream = typeof(BreastCancerData).Assembly.GetManifestResourceStream(ResourceName)
            ?? throw new InvalidOperationException($"Embedded data '{ResourceName}' is missing from {typeof(BreastCancerData).Assembly.GetName().Name}.");
        using var memory = new MemoryStream();
        stream.CopyTo(memory);
        byte[] bytes = memory.ToArray();
        string hash = Convert.ToHexStringLower(SHA256.HashData(bytes));
        if (hash != Sha256)
        {
            throw new InvalidDataException($"Embedded breast_cancer.csv has SHA-256 {hash}; expected {Sha256} (Data/breast-cancer/README.md).");
        }

        return Parse(new StringReader(System.Text.Encoding.UTF8.GetString(bytes)), "breast_cancer.csv");
    }

    /// <summary>
    /// Parses scikit-learn's layout: a header "569,30,malignant,benign" (rows, features, class names by code), then per
    /// row 30 values and the class code, 0 = malignant, 1 = benign. Errors name the line.
    /// </summary>
    public static BreastCancerRow[] Parse(TextReader reader, string source)
    {
        string header = reader.ReadLine() ?? throw new InvalidDataException($"{source} is empty.");
        string[] head = header.Split(',');
        if (head.Length != 4 || head[1] != FeatureCount.ToString(CultureInfo.InvariantCulture) || head[2] != "malignant" || head[3] != "benign"
            || !int.TryParse(head[0], NumberStyles.None, CultureInfo.InvariantCulture, out int rows))
        {
            throw new InvalidDataException($"{source}, line 1: expected scikit-learn's header 'ROWS,{FeatureCount},malignant,benign', got '{header}'.");
        }

        var result = new List<BreastCancerRow>(rows);
        int lineNumber = 1;
        while (reader.ReadLine() is string line)
        {
            lineNumber++;
            string[] fields = line.Split(',');
            if (fields.Length != FeatureCount + 1)
            {
                throw new InvalidDataException($"{source}, line {lineNumber}: expected {FeatureCount + 1} comma-separated values, got {fields.Length}.");
            }

            var features = new float[FeatureCount];
            for (int i = 0; i < FeatureCount; i++)
            {
                if (!float.TryParse(fields[i], NumberStyles.Float, CultureInfo.InvariantCulture, out features[i]) || !float.IsFinite(features[i]))
                {
                    throw new InvalidDataException($"{source}, line {lineNumber}, feature {i}: '{fields[i]}' is not a finite number.");
                }
            }

            bool malignant = fields[FeatureCount] switch
            {
                "0" => true,
                "1" => false,
                var code => throw new InvalidDataException($"{source}, line {lineNumber}: class code '{code}' is neither 0 (malignant) nor 1 (benign)."),
            };
            result.Add(new BreastCancerRow(features, malignant));
        }

        if (result.Count != rows)
        {
            throw new InvalidDataException($"{source}: the header announces {rows} rows, the file has {result.Count}.");
        }

        return result.ToArray();
    }
}
