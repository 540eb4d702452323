// Package credit holds the words that every kind of recognition shares: a
// location's share of a credit, and the reasons of SPEC.md sections 4 and 9
// why a resource or an account is not credited, each with its sentence.
// Power Platform attribution and Azure recognition both speak them, so
// that explain, diagnose, the gate and the pages say a reason one way.
package credit
