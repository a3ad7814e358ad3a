package specrunner

import (
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/readconcern"
	"go.mongodb.org/mongo-driver/v2/mongo/readpref"
	"go.mongodb.org/mongo-driver/v2/mongo/writeconcern"
	"go.mongodb.org/mongo-driver/v2/tag"
)

// commonOptions reads readConcern, readPreference and writeConcern from a
// collectionOrDatabaseOptions document.
func commonOptions(doc bson.Raw) (*readconcern.ReadConcern, *readpref.ReadPref, *writeconcern.WriteConcern, error) {
	if err := checkKeys(doc, "options", []string{"readConcern", "readPreference", "writeConcern"}); err != nil {
		return nil, nil, nil, err
	}
	var (
		rc  *readconcern.ReadConcern
		rp  *readpref.ReadPref
		wc  *writeconcern.WriteConcern
		err error
	)
	if d, ok := doc.Lookup("readConcern").DocumentOK(); ok {
		level, _ := d.Lookup("level").StringValueOK()
		rc = &readconcern.ReadConcern{Level: level}
	}
	if d, ok := doc.Lookup("readPreference").DocumentOK(); ok {
		if rp, err = readPreference(d); err != nil {
			return nil, nil, nil, err
		}
	}
	if d, ok := doc.Lookup("writeConcern").DocumentOK(); ok {
		if wc, err = writeConcern(d); err != nil {
			return nil, nil, nil, err
		}
	}
	return rc, rp, wc, nil
}

func readPreference(d bson.Raw) (*readpref.ReadPref, error) {
	if err := checkKeys(d, "readPreference", []string{"mode", "tagSets", "maxStalenessSeconds"}); err != nil {
		return nil, err
	}
	modeName, _ := d.Lookup("mode").StringValueOK()
	mode, err := readpref.ModeFromString(modeName)
	if err != nil {
		return nil, err
	}
	var opts []readpref.Option
	if v, err := d.LookupErr("maxStalenessSeconds"); err == nil {
		opts = append(opts, readpref.WithMaxStaleness(time.Duration(v.AsInt64())*time.Second))
	}
	if arr, ok := d.Lookup("tagSets").ArrayOK(); ok {
		vals, _ := arr.Values()
		var sets []tag.Set
		for _, v := range vals {
			var set tag.Set
			elems, _ := v.Document().Elements()
			for _, e := range elems {
				set = append(set, tag.Tag{Name: e.Key(), Value: e.Value().StringValue()})
			}
			sets = append(sets, set)
		}
		opts = append(opts, readpref.WithTagSets(sets...))
	}
	return readpref.New(mode, opts...)
}

func writeConcern(d bson.Raw) (*writeconcern.WriteConcern, error) {
	if err := checkKeys(d, "writeConcern", []string{"w", "journal"}); err != nil {
		return nil, err
	}
	wc := &writeconcern.WriteConcern{}
	if v, err := d.LookupErr("w"); err == nil {
		if s, ok := v.StringValueOK(); ok {
			wc.W = s
		} else {
			wc.W = int(v.AsInt64())
		}
	}
	if b, ok := d.Lookup("journal").BooleanOK(); ok {
		wc.Journal = &b
	}
	return wc, nil
}
