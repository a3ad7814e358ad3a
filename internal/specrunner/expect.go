package specrunner

import (
	"errors"
	"fmt"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// serverErrorDetails is what a server-derived error carries.
type serverErrorDetails struct {
	codes     []int32
	codeNames []string
	labels    []string
	raw       bson.Raw
}

// serverDetails extracts the server's part of err; ok is false for errors
// that did not come from a server response.
func serverDetails(err error) (serverErrorDetails, bool) {
	var d serverErrorDetails
	var ce mongo.CommandError
	if errors.As(err, &ce) {
		d.codes = []int32{ce.Code}
		d.codeNames = []string{ce.Name}
		d.labels = ce.Labels
		d.raw = ce.Raw
		return d, true
	}
	var we mongo.WriteException
	if errors.As(err, &we) {
		if we.WriteConcernError != nil {
			d.codes = append(d.codes, int32(we.WriteConcernError.Code))
			d.codeNames = append(d.codeNames, we.WriteConcernError.Name)
		}
		for _, w := range we.WriteErrors {
			d.codes = append(d.codes, int32(w.Code))
			if name, ok := w.Raw.Lookup("codeName").StringValueOK(); ok {
				d.codeNames = append(d.codeNames, name)
			}
		}
		d.labels = we.Labels
		d.raw = we.Raw
		return d, true
	}
	var bwe mongo.BulkWriteException
	if errors.As(err, &bwe) {
		if bwe.WriteConcernError != nil {
			d.codes = append(d.codes, int32(bwe.WriteConcernError.Code))
			d.codeNames = append(d.codeNames, bwe.WriteConcernError.Name)
		}
		for _, w := range bwe.WriteErrors {
			d.codes = append(d.codes, int32(w.Code))
		}
		d.labels = bwe.Labels
		return d, true
	}
	return d, false
}

// checkError evaluates an expectedError against the operation's error.
func checkError(m matcher, exp *ExpectedError, err error) error {
	if err == nil {
		return fmt.Errorf("expected an error, the operation succeeded")
	}
	if exp.IsError != nil && !*exp.IsError {
		return fmt.Errorf("expectError.isError must not be false")
	}
	details, fromServer := serverDetails(err)
	if exp.IsClientError != nil {
		// Network errors count as client errors.
		isClient := !fromServer || mongo.IsNetworkError(err)
		if isClient != *exp.IsClientError {
			return fmt.Errorf("expected isClientError=%v, got %v for error %v", *exp.IsClientError, isClient, err)
		}
	}
	if exp.IsTimeoutError != nil && mongo.IsTimeout(err) != *exp.IsTimeoutError {
		return fmt.Errorf("expected isTimeoutError=%v for error %v", *exp.IsTimeoutError, err)
	}
	if exp.ErrorContains != nil && !strings.Contains(strings.ToLower(err.Error()), strings.ToLower(*exp.ErrorContains)) {
		return fmt.Errorf("expected error containing %q, got %v", *exp.ErrorContains, err)
	}
	needsServer := exp.ErrorCode != nil || exp.ErrorCodeName != nil || len(exp.ErrorLabelsContain) > 0 ||
		len(exp.ErrorLabelsOmit) > 0 || exp.ErrorResponse != nil
	if needsServer && !fromServer {
		return fmt.Errorf("expected a server error, got a client error %T: %v", err, err)
	}
	if exp.ErrorCode != nil && !containsInt32(details.codes, *exp.ErrorCode) {
		return fmt.Errorf("expected error code %d, got %v (%v)", *exp.ErrorCode, details.codes, err)
	}
	if exp.ErrorCodeName != nil {
		found := false
		for _, n := range details.codeNames {
			if strings.EqualFold(n, *exp.ErrorCodeName) {
				found = true
			}
		}
		if !found {
			return fmt.Errorf("expected error code name %q, got %v (%v)", *exp.ErrorCodeName, details.codeNames, err)
		}
	}
	for _, l := range exp.ErrorLabelsContain {
		if !contains(details.labels, l) {
			return fmt.Errorf("expected error label %q, got labels %v (%v)", l, details.labels, err)
		}
	}
	for _, l := range exp.ErrorLabelsOmit {
		if contains(details.labels, l) {
			return fmt.Errorf("expected no error label %q, got labels %v (%v)", l, details.labels, err)
		}
	}
	if exp.ErrorResponse != nil {
		if details.raw == nil {
			return fmt.Errorf("expected a server error response, the error has none: %v", err)
		}
		if merr := m.match("errorResponse", docValue(exp.ErrorResponse), docValue(details.raw), true); merr != nil {
			return merr
		}
	}
	if exp.ExpectResult != nil {
		return fmt.Errorf("expectError.expectResult is not supported by this runner (no operation here returns a partial result)")
	}
	return nil
}

func containsInt32(list []int32, v int32) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}
