package hsmd

// DefaultKMSRegions are the regions a node's KMS API serves when its [kms]
// section names none: every region of AWS's commercial partition ("aws"),
// as the AWS SDK for Go v2 this module builds with lists them
// (github.com/aws/aws-sdk-go-v2 v1.48.0,
// internal/endpoints/awsrulesfn/partitions.json, partition "aws", without
// its pseudo-region "aws-global"). The other partitions (aws-cn,
// aws-us-gov, aws-eusc and the isolated ones) are not commercial regions
// and have ARN partitions of their own. TestDefaultKMSRegions compares the
// table with that file.
var DefaultKMSRegions = []string{
	"af-south-1",     // Africa (Cape Town)
	"ap-east-1",      // Asia Pacific (Hong Kong)
	"ap-east-2",      // Asia Pacific (Taipei)
	"ap-northeast-1", // Asia Pacific (Tokyo)
	"ap-northeast-2", // Asia Pacific (Seoul)
	"ap-northeast-3", // Asia Pacific (Osaka)
	"ap-south-1",     // Asia Pacific (Mumbai)
	"ap-south-2",     // Asia Pacific (Hyderabad)
	"ap-southeast-1", // Asia Pacific (Singapore)
	"ap-southeast-2", // Asia Pacific (Sydney)
	"ap-southeast-3", // Asia Pacific (Jakarta)
	"ap-southeast-4", // Asia Pacific (Melbourne)
	"ap-southeast-5", // Asia Pacific (Malaysia)
	"ap-southeast-6", // Asia Pacific (New Zealand)
	"ap-southeast-7", // Asia Pacific (Thailand)
	"ca-central-1",   // Canada (Central)
	"ca-west-1",      // Canada West (Calgary)
	"eu-central-1",   // Europe (Frankfurt)
	"eu-central-2",   // Europe (Zurich)
	"eu-north-1",     // Europe (Stockholm)
	"eu-south-1",     // Europe (Milan)
	"eu-south-2",     // Europe (Spain)
	"eu-west-1",      // Europe (Ireland)
	"eu-west-2",      // Europe (London)
	"eu-west-3",      // Europe (Paris)
	"il-central-1",   // Israel (Tel Aviv)
	"me-central-1",   // Middle East (UAE)
	"me-south-1",     // Middle East (Bahrain)
	"me-west-1",      // Middle East (Saudi Arabia)
	"mx-central-1",   // Mexico (Central)
	"sa-east-1",      // South America (Sao Paulo)
	"sa-west-1",      // South America (Chile)
	"us-east-1",      // US East (N. Virginia)
	"us-east-2",      // US East (Ohio)
	"us-west-1",      // US West (N. California)
	"us-west-2",      // US West (Oregon)
}
